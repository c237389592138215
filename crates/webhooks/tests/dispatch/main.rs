//! The dispatcher against a real HTTP receiver on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod delivery;
mod lifecycle;
mod ssrf;
mod support;
