//! `--database` / `BUZZER_DATABASE_URL`: which store to open, and where.

use std::path::PathBuf;

/// A parsed database URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite:path`, `sqlite://path`, `sqlite:///abs/path` or a bare path.
    Sqlite(PathBuf),
    /// `postgres://…` or `postgresql://…`, kept whole for the PostgreSQL store.
    Postgres(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DatabaseUrlError {
    #[error("the database URL is empty (expected sqlite:PATH or postgres://…)")]
    Empty,
    #[error("{url:?} names no file (expected sqlite:PATH, e.g. sqlite:buzzer.db)")]
    NoPath { url: String },
    #[error(
        "{url:?}: query parameters are not supported in a SQLite URL; give only the path, e.g. sqlite:buzzer.db"
    )]
    Query { url: String },
    #[error(
        "unsupported database URL scheme {scheme:?} in {url:?} (expected sqlite: or postgres://)"
    )]
    Scheme { scheme: String, url: String },
}

impl std::str::FromStr for DatabaseUrl {
    type Err = DatabaseUrlError;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        let url = url.trim();
        if url.is_empty() {
            return Err(DatabaseUrlError::Empty);
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(url.to_owned()));
        }
        // `sqlite://x` keeps everything after the two slashes, so `sqlite:///abs` is `/abs`
        // and `sqlite://rel.db` is relative, as sqlx and SQLAlchemy read them.
        let path = match url.strip_prefix("sqlite://") {
            Some(rest) => rest,
            None => match url.strip_prefix("sqlite:") {
                Some(rest) => rest,
                None => {
                    if let Some(scheme) = scheme_of(url) {
                        return Err(DatabaseUrlError::Scheme {
                            scheme: scheme.to_owned(),
                            url: url.to_owned(),
                        });
                    }
                    url
                }
            },
        };
        if path.is_empty() {
            return Err(DatabaseUrlError::NoPath {
                url: url.to_owned(),
            });
        }
        // `sqlite:buzzer.db?mode=rwc` (sqlx style) would otherwise create a file literally
        // named `buzzer.db?mode=rwc`; saying so beats a surprising file name.
        if url.starts_with("sqlite:") && path.contains('?') {
            return Err(DatabaseUrlError::Query {
                url: url.to_owned(),
            });
        }
        Ok(DatabaseUrl::Sqlite(PathBuf::from(path)))
    }
}

/// The scheme of `scheme://…`, if the text looks like a URL rather than a path.
fn scheme_of(url: &str) -> Option<&str> {
    let (scheme, _) = url.split_once("://")?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some(scheme)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(url: &str) -> PathBuf {
        match url.parse::<DatabaseUrl>() {
            Ok(DatabaseUrl::Sqlite(p)) => p,
            other => panic!("{url}: {other:?}"),
        }
    }

    #[test]
    fn sqlite_forms() {
        assert_eq!(sqlite("sqlite:buzzer.db"), PathBuf::from("buzzer.db"));
        assert_eq!(sqlite("sqlite:data/b.db"), PathBuf::from("data/b.db"));
        assert_eq!(
            sqlite("sqlite:/var/lib/b.db"),
            PathBuf::from("/var/lib/b.db")
        );
        assert_eq!(sqlite("sqlite://rel/b.db"), PathBuf::from("rel/b.db"));
        assert_eq!(sqlite("sqlite:///abs/b.db"), PathBuf::from("/abs/b.db"));
        assert_eq!(sqlite("buzzer.db"), PathBuf::from("buzzer.db"));
        assert_eq!(sqlite("/tmp/x/b.db"), PathBuf::from("/tmp/x/b.db"));
        assert_eq!(sqlite("./b.db"), PathBuf::from("./b.db"));
        assert_eq!(sqlite("  sqlite:b.db "), PathBuf::from("b.db"));
    }

    #[test]
    fn postgres_is_recognised() {
        for url in [
            "postgres://u@localhost/db",
            "postgresql://u:p@127.0.0.1:5432/db?sslmode=disable",
        ] {
            assert_eq!(
                url.parse::<DatabaseUrl>(),
                Ok(DatabaseUrl::Postgres(url.to_owned()))
            );
        }
    }

    #[test]
    fn junk_is_refused_with_a_reason() {
        assert_eq!("".parse::<DatabaseUrl>(), Err(DatabaseUrlError::Empty));
        assert!(matches!(
            "sqlite:".parse::<DatabaseUrl>(),
            Err(DatabaseUrlError::NoPath { .. })
        ));
        assert!(matches!(
            "sqlite://".parse::<DatabaseUrl>(),
            Err(DatabaseUrlError::NoPath { .. })
        ));
        assert!(matches!(
            "sqlite:b.db?mode=rwc".parse::<DatabaseUrl>(),
            Err(DatabaseUrlError::Query { .. })
        ));
        let err = "mysql://root@localhost/db"
            .parse::<DatabaseUrl>()
            .unwrap_err();
        assert!(err.to_string().contains("\"mysql\""), "{err}");
    }
}
