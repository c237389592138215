//! The SSRF guard: a DNS resolver for the HTTP client that drops non-public addresses.
//!
//! The check runs inside the connector, each time a host name is resolved for a new
//! connection, so what is judged is exactly what is connected to: a name that resolved to a
//! public address when the subscription was made and resolves to 127.0.0.1 now (DNS
//! rebinding) is refused. A URL that names an address literally needs no resolution and is
//! checked before the request instead ([`crate::attempt`]); redirects are never followed and
//! no proxy is used, so no other address is ever reached.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use buzzer_types::webhook_url::non_public_reason;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// A delivery refused because its host resolves only to non-public addresses.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "refused: {host} resolves to {ip}, a {reason} address; webhooks may only reach public \
     addresses unless the server runs with --allow-private-webhooks"
)]
pub struct AddressRefused {
    pub host: String,
    pub ip: IpAddr,
    pub reason: &'static str,
}

/// Resolves with the system resolver, then keeps only public addresses.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: the connector puts the URL's port in.
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let (public, refused): (Vec<SocketAddr>, Vec<SocketAddr>) = resolved
                .into_iter()
                .partition(|a| non_public_reason(a.ip()).is_none());
            if public.is_empty()
                && let Some(first) = refused.first()
            {
                let ip = first.ip();
                let reason = non_public_reason(ip).unwrap_or("non-public");
                let refused: Box<dyn std::error::Error + Send + Sync> =
                    Box::new(AddressRefused { host, ip, reason });
                return Err(refused);
            }
            let addrs: Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

/// The client every delivery uses: no redirects, no proxy, and unless `allow_private` the
/// [`PublicOnly`] resolver.
pub(crate) fn client(config: &crate::WebhookConfig) -> Result<reqwest::Client, reqwest::Error> {
    let builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(config.attempt_timeout)
        .user_agent(concat!("buzzer-webhooks/", env!("CARGO_PKG_VERSION")));
    let builder = if config.allow_private {
        builder
    } else {
        builder.dns_resolver(Arc::new(PublicOnly))
    };
    builder.build()
}

/// The guard's refusal inside a client error, if that is what it is.
pub(crate) fn refusal(error: &reqwest::Error) -> Option<&AddressRefused> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(refused) = e.downcast_ref::<AddressRefused>() {
            return Some(refused);
        }
        source = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;
    use crate::WebhookConfig;

    #[tokio::test]
    async fn names_resolving_to_loopback_are_refused_at_resolution() {
        let err = match PublicOnly
            .resolve(Name::from_str("localhost").unwrap())
            .await
        {
            Ok(addrs) => panic!("resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(e) => e,
        };
        let refused = err.downcast_ref::<AddressRefused>().unwrap();
        assert_eq!(refused.reason, "loopback");
        assert!(
            refused
                .to_string()
                .starts_with("refused: localhost resolves to ")
        );
    }

    /// The request path the dispatcher's own literal check does not cover: the client alone
    /// refuses a name at connect time, and nothing reaches the listener.
    #[tokio::test]
    async fn the_client_refuses_at_connect_time() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let guarded = client(&WebhookConfig::default()).unwrap();
        let err = guarded
            .post(format!("http://localhost:{port}/"))
            .send()
            .await
            .unwrap_err();
        let refused = refusal(&err).unwrap();
        assert_eq!(refused.host, "localhost");
        let accepted =
            tokio::time::timeout(std::time::Duration::from_millis(200), listener.accept()).await;
        assert!(accepted.is_err(), "a connection was made");

        let open = client(&WebhookConfig {
            allow_private: true,
            ..WebhookConfig::default()
        })
        .unwrap();
        let (request, accepted) = tokio::join!(
            open.post(format!("http://localhost:{port}/"))
                .timeout(std::time::Duration::from_millis(300))
                .send(),
            listener.accept()
        );
        assert!(accepted.is_ok(), "allowed: the connection is made");
        drop(request);
    }
}
