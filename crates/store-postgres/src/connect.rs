//! From a URL and [`PgOptions`] to connection settings and a pool.

use std::time::Duration;

use buzzer_store::StoreError;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::{Config, NoTls};

use crate::PgOptions;

/// Where and how to connect: the settings every connection of one store shares.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) config: Config,
    /// The schema named by the options or the URL; `None` means the connection's default.
    pub(crate) schema: Option<String>,
    /// The URL without its password, for messages.
    pub(crate) shown: String,
}

/// Parses `url` (`postgres://…` or a `key=value` connection string). A `schema=NAME` query
/// parameter is Buzzer's and is taken out before the rest goes to the driver.
pub(crate) fn target(url: &str, opts: &PgOptions) -> Result<Target, StoreError> {
    let shown = without_password(url);
    let (url, url_schema) = take_schema(url);
    let mut config: Config = url.parse().map_err(|e| {
        StoreError::backend(ConnectError(format!(
            "{shown} is not a PostgreSQL URL: {}",
            crate::error::describe(&e)
        )))
    })?;
    let schema = opts.schema.clone().or(url_schema);
    if let Some(schema) = &schema {
        check_schema(schema)
            .map_err(|m| StoreError::backend(ConnectError(format!("schema {schema:?}: {m}"))))?;
    }
    if config.get_application_name().is_none() {
        config.application_name("buzzer");
    }
    config.connect_timeout(opts.connect_timeout);
    // Notice a peer that vanished without closing (a dead host, a cut proxy) in about a
    // minute rather than the OS default of two hours.
    config.keepalives(true);
    config.keepalives_idle(Duration::from_secs(30));
    Ok(Target {
        config,
        schema,
        shown,
    })
}

impl Target {
    /// The settings of this store's own connections: its schema first in `search_path`, and
    /// its origin (so its listener can skip its own notifications). Both travel in the startup
    /// packet, so every connection the pool opens, or reopens after an outage, has them.
    pub(crate) fn session(&self, origin: &str) -> Config {
        let mut config = self.config.clone();
        let mut options = config.get_options().unwrap_or_default().to_owned();
        if let Some(schema) = &self.schema {
            options.push_str(&format!(" -c search_path={schema}"));
        }
        options.push_str(&format!(" -c buzzer.origin={origin}"));
        config.options(options.trim_start());
        config
    }
}

/// A pool that recycles a connection only if it is still open (`is_closed`), so after an
/// outage the broken connections are dropped and new ones opened on demand.
pub(crate) fn pool(config: Config, opts: &PgOptions) -> Result<Pool, StoreError> {
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(opts.max_connections.max(1))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(opts.acquire_timeout))
        .create_timeout(Some(opts.connect_timeout))
        .recycle_timeout(Some(opts.connect_timeout))
        .build()
        .map_err(|e| StoreError::backend(ConnectError(format!("cannot build the pool: {e}"))))
}

/// Why connecting failed, in words (wrapped in [`StoreError::Backend`]).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConnectError(pub String);

/// Buzzer's `schema=NAME` URL parameter, and the URL without it.
fn take_schema(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), None);
    };
    let mut schema = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.strip_prefix("schema=") {
            Some(name) => {
                schema = Some(name.to_owned());
                false
            }
            None => true,
        })
        .collect();
    let url = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    (url, schema)
}

/// A schema name needs no quoting anywhere (SQL, `-c search_path=`, the channel name) if it
/// is a plain lowercase identifier; and `buzzer_changes:<schema>` must fit a 63-byte channel.
pub(crate) fn check_schema(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        return Err("use lowercase letters, digits and _, not starting with a digit".into());
    }
    if name.len() > 48 {
        return Err("must be at most 48 characters".into());
    }
    Ok(())
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_parameter_is_taken_out_of_the_url() {
        assert_eq!(
            take_schema("postgres://u@h/db?schema=s1&sslmode=disable"),
            (
                "postgres://u@h/db?sslmode=disable".into(),
                Some("s1".into())
            )
        );
        assert_eq!(
            take_schema("postgres://u@h/db?schema=s1"),
            ("postgres://u@h/db".into(), Some("s1".into()))
        );
        assert_eq!(
            take_schema("postgres://u@h/db"),
            ("postgres://u@h/db".into(), None)
        );
    }

    #[test]
    fn schema_names_are_plain_identifiers() {
        assert!(check_schema("buzzer_1").is_ok());
        assert!(check_schema("_x").is_ok());
        for bad in ["", "1a", "A", "a-b", "a b", "a;drop", &"a".repeat(49)] {
            assert!(check_schema(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            without_password("postgres://u:secret@h:5432/db?x=1"),
            "postgres://u:***@h:5432/db?x=1"
        );
        assert_eq!(without_password("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(without_password("host=h user=u"), "host=h user=u");
    }

    #[test]
    fn session_options_carry_schema_and_origin() {
        let opts = PgOptions {
            schema: Some("s1".into()),
            ..PgOptions::default()
        };
        let t = target(
            "postgres://u@h/db?options=-c%20statement_timeout%3D5s",
            &opts,
        )
        .unwrap();
        let session = t.session("abc");
        assert_eq!(
            session.get_options(),
            Some("-c statement_timeout=5s -c search_path=s1 -c buzzer.origin=abc")
        );
        assert_eq!(session.get_application_name(), Some("buzzer"));
    }
}
