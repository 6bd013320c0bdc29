//! The tokio runtime of the core: one worker thread by default
//! (`YG_REDIS_THREADS`), for connection attempts, timeouts and the reader
//! where the JS thread does not read.

use once_cell::sync::Lazy;

/// The tokio runtime every client uses; its threads never keep Node alive.
pub static RUNTIME: Lazy<tokio::runtime::Runtime> = Lazy::new(|| {
  let threads = std::env::var("YG_REDIS_THREADS")
    .ok()
    .and_then(|v| v.parse().ok())
    .unwrap_or(1);
  tokio::runtime::Builder::new_multi_thread()
    .worker_threads(threads)
    .thread_name("yg-redis")
    .enable_all()
    .build()
    .expect("cannot start the tokio runtime")
});
