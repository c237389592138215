//! One way to run SQL on whatever connection a function is handed: a pooled client, a
//! transaction on one, or an application's own transaction (transactional enqueue). Pooled
//! connections cache their prepared statements; a foreign transaction prepares each time.

use std::future::Future;

use tokio_postgres::{
    GenericClient, Row, Statement,
    types::{ToSql, Type},
};

pub(crate) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

pub(crate) trait Db: Sync {
    /// The prepared form of `sql`, from this connection's cache where it has one.
    fn prepare_sql(
        &self,
        sql: &str,
    ) -> impl Future<Output = Result<Statement, tokio_postgres::Error>> + Send;

    /// The underlying client, to run a prepared statement.
    fn client(&self) -> &impl GenericClient;

    /// Runs `sql` and returns its rows.
    fn rows(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> impl Future<Output = Result<Vec<Row>, tokio_postgres::Error>> + Send {
        async move {
            let statement = self.prepare_sql(sql).await?;
            self.client().query(&statement, params).await
        }
    }

    /// Runs `sql` as an unnamed statement, parsed and planned for these arguments each time, in
    /// one round trip: for a statement whose best plan depends on its arguments (a cached
    /// generic plan can be far worse than any custom one).
    fn rows_planned(
        &self,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> impl Future<Output = Result<Vec<Row>, tokio_postgres::Error>> + Send {
        async move { self.client().query_typed(sql, params).await }
    }

    /// Runs `sql` and returns how many rows it touched (or returned).
    fn exec(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> impl Future<Output = Result<u64, tokio_postgres::Error>> + Send {
        async move {
            let statement = self.prepare_sql(sql).await?;
            self.client().execute(&statement, params).await
        }
    }
}

impl Db for deadpool_postgres::ClientWrapper {
    fn prepare_sql(
        &self,
        sql: &str,
    ) -> impl Future<Output = Result<Statement, tokio_postgres::Error>> + Send {
        self.prepare_cached(sql)
    }

    fn client(&self) -> &impl GenericClient {
        &**self
    }
}

impl Db for deadpool_postgres::Transaction<'_> {
    fn prepare_sql(
        &self,
        sql: &str,
    ) -> impl Future<Output = Result<Statement, tokio_postgres::Error>> + Send {
        self.prepare_cached(sql)
    }

    fn client(&self) -> &impl GenericClient {
        &**self
    }
}

impl Db for tokio_postgres::Transaction<'_> {
    fn prepare_sql(
        &self,
        sql: &str,
    ) -> impl Future<Output = Result<Statement, tokio_postgres::Error>> + Send {
        self.prepare(sql)
    }

    fn client(&self) -> &impl GenericClient {
        self
    }
}
