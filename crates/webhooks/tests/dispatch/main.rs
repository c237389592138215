//! The dispatcher against a real HTTP receiver on loopback.

mod delivery;
mod lifecycle;
mod ssrf;
mod support;
