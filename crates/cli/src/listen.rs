//! `--listen`: resolving the address, and refusing to expose an open API to the network.

use std::net::{SocketAddr, ToSocketAddrs};

/// Resolves `HOST:PORT` (an IP or a hostname, which may name several addresses).
pub fn resolve(listen: &str) -> anyhow::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = listen
        .to_socket_addrs()
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot use --listen {listen:?}: {e} (expected HOST:PORT, e.g. 127.0.0.1:2899)"
            )
        })?
        .collect();
    if addrs.is_empty() {
        anyhow::bail!("cannot use --listen {listen:?}: the host resolves to no address");
    }
    Ok(addrs)
}

/// Only loopback addresses keep the API on this machine. `0.0.0.0` and `::` are not loopback:
/// they listen on every interface. An IPv4-mapped `::ffff:127.0.0.1` is loopback.
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().to_canonical().is_loopback()
}

/// The rule from the design: without an API key the server binds loopback only, because an
/// unauthenticated job queue on the network lets anyone enqueue, read payloads and cancel work.
pub fn check_exposure(listen: &str, addrs: &[SocketAddr], has_api_key: bool) -> anyhow::Result<()> {
    if has_api_key {
        return Ok(());
    }
    if let Some(open) = addrs.iter().find(|a| !is_loopback(a)) {
        anyhow::bail!(
            "refusing to listen on {listen} ({}) without an API key: it is not a loopback address, \
             so anyone on the network could use the API; set --api-key KEY (or BUZZER_API_KEY), \
             or listen on 127.0.0.1",
            open.ip()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn loopback_addresses() {
        assert!(is_loopback(&addr("127.0.0.1:2899")));
        assert!(is_loopback(&addr("127.8.9.10:0")));
        assert!(is_loopback(&addr("[::1]:2899")));
        assert!(is_loopback(&addr("[::ffff:127.0.0.1]:2899")));
        assert!(!is_loopback(&addr("0.0.0.0:2899")));
        assert!(!is_loopback(&addr("[::]:2899")));
        assert!(!is_loopback(&addr("192.168.1.20:2899")));
        assert!(!is_loopback(&addr("10.0.0.1:2899")));
        assert!(!is_loopback(&addr("[::ffff:10.0.0.1]:2899")));
        assert!(!is_loopback(&addr("[fe80::1]:2899")));
    }

    #[test]
    fn exposure_needs_a_key() {
        let any = [addr("0.0.0.0:0")];
        let err = check_exposure("0.0.0.0:0", &any, false).unwrap_err();
        assert!(err.to_string().contains("without an API key"), "{err}");
        assert!(check_exposure("0.0.0.0:0", &any, true).is_ok());
        let local = [addr("127.0.0.1:0"), addr("[::1]:0")];
        assert!(check_exposure("localhost:0", &local, false).is_ok());
        // One open address among loopback ones is still exposure.
        let mixed = [addr("127.0.0.1:0"), addr("192.168.1.2:0")];
        assert!(check_exposure("host:0", &mixed, false).is_err());
    }

    #[test]
    fn resolves_ips_and_hostnames() {
        assert_eq!(resolve("127.0.0.1:0").unwrap(), vec![addr("127.0.0.1:0")]);
        assert_eq!(resolve("[::]:80").unwrap(), vec![addr("[::]:80")]);
        let local = resolve("localhost:2899").unwrap();
        assert!(local.iter().all(is_loopback), "{local:?}");
        assert!(resolve("127.0.0.1").is_err());
        assert!(resolve("127.0.0.1:notaport").is_err());
    }
}
