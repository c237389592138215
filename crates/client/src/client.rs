use std::{sync::Arc, time::Instant};

use buzzer_engine::Engine;
use buzzer_types::JobId;

use crate::{
    BreakerConfig, BreakerState, Call, Enqueue, EnqueueBatch, Error, Job, JobHandle,
    breaker::Breakers,
    transport::{Transport, embedded::Embedded},
};

/// A client of one Buzzer: an embedded store in this process ([`Buzzer::open`]) or a
/// `buzzer serve` over HTTP (`Buzzer::connect`). Both have the same API, so code moves from
/// one to the other by changing the line that makes the client.
///
/// Cheap to clone: every clone shares one connection pool (or engine) and one set of circuit
/// breakers. Make one per process and pass clones around.
///
/// ```no_run
/// # async fn demo() -> Result<(), buzzer::Error> {
/// use buzzer::Buzzer;
///
/// let buzzer = Buzzer::open("jobs.db").await?; // embedded: no server to run
/// # #[cfg(feature = "remote")]
/// let buzzer = Buzzer::connect("http://127.0.0.1:2899").await?; // or a server
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Buzzer {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Box<dyn Transport>,
    breakers: Breakers,
    /// Set for an embedded client, so callers can reach the engine underneath.
    engine: Option<Engine>,
}

impl std::fmt::Debug for Buzzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Buzzer")
            .field("transport", &self.inner.transport)
            .finish_non_exhaustive()
    }
}

impl Buzzer {
    pub(crate) fn with_transport(transport: impl Transport, engine: Option<Engine>) -> Buzzer {
        Buzzer {
            inner: Arc::new(Inner {
                transport: Box::new(transport),
                breakers: Breakers::default(),
                engine,
            }),
        }
    }

    /// Opens (creating if needed) the SQLite database at `path` and runs the engine's
    /// services (scheduler, lease rescuer, pruner) in this process: a complete Buzzer with no
    /// server. Call [`Buzzer::shutdown`] before exiting to stop them and close the database.
    ///
    /// Fails when the file is not a Buzzer database, is damaged, or is open in another
    /// process (SQLite allows one Buzzer per file; run `buzzer serve` and
    /// `Buzzer::connect` to share it).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), buzzer::Error> {
    /// let buzzer = buzzer::Buzzer::open("jobs.db").await?;
    /// // … enqueue, call, run workers …
    /// buzzer.shutdown().await?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "sqlite")]
    pub async fn open(path: impl AsRef<std::path::Path>) -> Result<Buzzer, Error> {
        Buzzer::open_with(
            path,
            crate::SqliteOptions::default(),
            crate::EngineConfig::default(),
        )
        .await
    }

    /// [`Buzzer::open`] with the store's and the engine's settings (durability, retention,
    /// default retry policy, …).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), buzzer::Error> {
    /// use buzzer::{Buzzer, EngineConfig, SqliteOptions, Synchronous};
    ///
    /// let store = SqliteOptions { synchronous: Synchronous::Normal, ..SqliteOptions::default() };
    /// let engine = EngineConfig { default_max_attempts: 5, ..EngineConfig::default() };
    /// let buzzer = Buzzer::open_with("jobs.db", store, engine).await?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "sqlite")]
    pub async fn open_with(
        path: impl AsRef<std::path::Path>,
        store: crate::SqliteOptions,
        engine: crate::EngineConfig,
    ) -> Result<Buzzer, Error> {
        let path = path.as_ref().to_owned();
        // Opening checks and migrates the file: blocking work, kept off the async threads.
        let store = tokio::task::spawn_blocking(move || {
            buzzer_store_sqlite::SqliteStore::open(path, store)
        })
        .await
        .map_err(|e| Error::Unavailable(format!("opening the store did not finish: {e}")))??;
        Ok(Buzzer::run_engine(Arc::new(store), engine))
    }

    /// Connects to a PostgreSQL database (applying pending migrations) and runs the engine's
    /// services in this process: a node of a Buzzer that other `buzzer serve` processes and
    /// workers share. Only the elected leader among the nodes runs the scheduler, rescuer and
    /// pruner. Call [`Buzzer::shutdown`] before exiting.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), buzzer::Error> {
    /// let buzzer = buzzer::Buzzer::open_postgres("postgres://buzzer@db.internal/app").await?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "postgres")]
    pub async fn open_postgres(url: &str) -> Result<Buzzer, Error> {
        Buzzer::open_postgres_with(
            url,
            crate::PgOptions::default(),
            crate::EngineConfig::default(),
        )
        .await
    }

    /// [`Buzzer::open_postgres`] with the store's and the engine's settings (schema, pool
    /// size, retention, default retry policy, …).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), buzzer::Error> {
    /// use buzzer::{Buzzer, EngineConfig, PgOptions};
    ///
    /// let store = PgOptions { schema: Some("jobs".into()), ..PgOptions::default() };
    /// let buzzer = Buzzer::open_postgres_with("postgres://buzzer@db/app", store, EngineConfig::default())
    ///     .await?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "postgres")]
    pub async fn open_postgres_with(
        url: &str,
        store: crate::PgOptions,
        engine: crate::EngineConfig,
    ) -> Result<Buzzer, Error> {
        let store = buzzer_store_postgres::PgStore::connect(url, store).await?;
        Ok(Buzzer::run_engine(Arc::new(store), engine))
    }

    /// An engine over `store` with its services running, owned by the client.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    fn run_engine(store: Arc<dyn buzzer_engine::Store>, config: crate::EngineConfig) -> Buzzer {
        let engine = Engine::new(store, config);
        let services = engine.start_services();
        Buzzer::with_transport(Embedded::owning(engine.clone(), services), Some(engine))
    }

    /// A client over an engine you built and run yourself (another store, custom services,
    /// or the same engine an in-process HTTP server uses). [`Buzzer::shutdown`] leaves that
    /// engine running: stopping it is yours.
    ///
    /// ```no_run
    /// # fn demo(engine: buzzer::Engine) {
    /// let buzzer = buzzer::Buzzer::embedded(engine.clone());
    /// // e.g. serve the HTTP API over the same engine:
    /// // buzzer_server::serve(listener, engine, config, shutdown)
    /// # }
    /// ```
    pub fn embedded(engine: Engine) -> Buzzer {
        Buzzer::with_transport(Embedded::borrowing(engine.clone()), Some(engine))
    }

    /// A client of the `buzzer serve` at `url` (e.g. `http://127.0.0.1:2899`), over one
    /// keep-alive connection pool (HTTP/1.1, rustls for `https://`).
    ///
    /// Nothing is sent yet: a server that is down shows up as [`Error::Transport`] on the first
    /// call, so workers may start before their server.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), buzzer::Error> {
    /// let buzzer = buzzer::Buzzer::connect("http://127.0.0.1:2899").await?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "remote")]
    pub async fn connect(url: &str) -> Result<Buzzer, Error> {
        let remote = crate::transport::remote::Remote::new(url, None)?;
        Ok(Buzzer::with_transport(remote, None))
    }

    /// [`Buzzer::connect`] to a server that requires an API key (`buzzer serve --api-key KEY`);
    /// the key goes as `Authorization: Bearer KEY` and is never logged or printed.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), buzzer::Error> {
    /// let key = std::env::var("BUZZER_API_KEY").unwrap_or_default();
    /// let buzzer = buzzer::Buzzer::connect_with("https://jobs.internal:2899", &key).await?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "remote")]
    pub async fn connect_with(url: &str, api_key: &str) -> Result<Buzzer, Error> {
        let remote = crate::transport::remote::Remote::new(url, Some(api_key))?;
        Ok(Buzzer::with_transport(remote, None))
    }

    /// Starts an enqueue of `job` into `J::QUEUE`; set options on the returned builder, then
    /// `.await` it for a [`JobHandle`]. See [`Enqueue`] for every option.
    ///
    /// ```no_run
    /// # async fn demo(buzzer: buzzer::Buzzer) -> Result<(), buzzer::Error> {
    /// # #[derive(serde::Serialize, serde::Deserialize)] struct Invoice { order: u64 }
    /// # impl buzzer::Job for Invoice { const QUEUE: &'static str = "invoices"; type Output = (); }
    /// use std::time::Duration;
    ///
    /// let handle = buzzer
    ///     .enqueue(Invoice { order: 42 })
    ///     .delay(Duration::from_secs(60))
    ///     .idempotency_key("invoice-42")
    ///     .await?;
    /// println!("job {}", handle.id());
    /// # Ok(()) }
    /// ```
    pub fn enqueue<J: Job>(&self, job: J) -> Enqueue<J> {
        Enqueue::new(self.clone(), job)
    }

    /// Starts a batch enqueue: every job into one queue in one transaction, all or none, with
    /// the same options. Awaiting it gives one handle per job, in order.
    ///
    /// ```no_run
    /// # async fn demo(buzzer: buzzer::Buzzer) -> Result<(), buzzer::Error> {
    /// # #[derive(serde::Serialize, serde::Deserialize)] struct Invoice { order: u64 }
    /// # impl buzzer::Job for Invoice { const QUEUE: &'static str = "invoices"; type Output = (); }
    /// let handles = buzzer
    ///     .enqueue_batch((1..=1000).map(|order| Invoice { order }))
    ///     .priority(-10)
    ///     .await?;
    /// assert_eq!(handles.len(), 1000);
    /// # Ok(()) }
    /// ```
    pub fn enqueue_batch<J: Job>(&self, jobs: impl IntoIterator<Item = J>) -> EnqueueBatch<J> {
        EnqueueBatch::new(self.clone(), jobs.into_iter().collect())
    }

    /// The hybrid call: enqueue `job` and wait up to [`Call::within`] for its output.
    /// [`Answer::Now`](crate::Answer::Now) carries the output when the job finished in time;
    /// [`Answer::Later`](crate::Answer::Later) carries a handle to follow it otherwise. A job
    /// that died in time is an [`Error::JobDead`] with its errors.
    ///
    /// While most recent calls on a queue miss their deadline, the queue's circuit breaker
    /// answers `Later` at once (the job is still enqueued): see [`Buzzer::breaker`].
    ///
    /// ```no_run
    /// # async fn demo(buzzer: buzzer::Buzzer) -> Result<(), buzzer::Error> {
    /// # #[derive(serde::Serialize, serde::Deserialize)] struct Quote { sku: String }
    /// # impl buzzer::Job for Quote { const QUEUE: &'static str = "quotes"; type Output = u64; }
    /// use std::time::Duration;
    /// use buzzer::Answer;
    ///
    /// match buzzer.call(Quote { sku: "A-1".into() }).within(Duration::from_millis(250)).await? {
    ///     Answer::Now(cents) => println!("{cents}"),
    ///     Answer::Later(handle) => println!("still working: job {}", handle.id()),
    /// }
    /// # Ok(()) }
    /// ```
    pub fn call<J: Job>(&self, job: J) -> Call<J> {
        Call::new(self.clone(), job)
    }

    /// A handle on a job known by its id, e.g. one a web client polls.
    ///
    /// ```no_run
    /// # async fn demo(buzzer: buzzer::Buzzer) -> Result<(), buzzer::Error> {
    /// # #[derive(serde::Serialize, serde::Deserialize)] struct Quote;
    /// # impl buzzer::Job for Quote { const QUEUE: &'static str = "quotes"; type Output = u64; }
    /// let id: buzzer::JobId = "0000000000001".parse()?;
    /// let state = buzzer.handle::<Quote>(id).status().await?.state;
    /// # Ok(()) }
    /// ```
    pub fn handle<J: Job>(&self, id: JobId) -> JobHandle<J> {
        JobHandle::new(self.clone(), id)
    }

    /// Sets the circuit breaker of the hybrid call for every queue (all breakers start over
    /// closed). Affects every clone of this client.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), buzzer::Error> {
    /// use std::time::Duration;
    /// use buzzer::{BreakerConfig, Buzzer};
    ///
    /// let buzzer = Buzzer::open("jobs.db").await?.breaker(BreakerConfig {
    ///     cooldown: Duration::from_secs(10),
    ///     ..BreakerConfig::default()
    /// });
    /// # Ok(()) }
    /// ```
    pub fn breaker(self, config: BreakerConfig) -> Buzzer {
        self.inner.breakers.configure(config);
        self
    }

    /// Where the circuit breaker of `queue` is now; `Closed` for a queue never called.
    pub fn breaker_state(&self, queue: &str) -> BreakerState {
        self.inner.breakers.state(queue, Instant::now())
    }

    /// The engine underneath an embedded client (`None` for a remote one), e.g. to serve the
    /// HTTP API from the same process.
    pub fn engine(&self) -> Option<&Engine> {
        self.inner.engine.as_ref()
    }

    /// Stops the engine's services and closes the database of a client made by
    /// [`Buzzer::open`] (or `open_postgres`), after which calls fail with [`Error::Unavailable`]. Stop workers
    /// first ([`WorkerHandle::shutdown`](crate::WorkerHandle::shutdown)), so they can hand
    /// their jobs back. For other clients it only marks them closed.
    pub async fn shutdown(&self) -> Result<(), Error> {
        self.inner.transport.shutdown().await
    }

    pub(crate) fn transport(&self) -> &dyn Transport {
        &*self.inner.transport
    }

    pub(crate) fn breakers(&self) -> &Breakers {
        &self.inner.breakers
    }
}
