//! What the crate's own unit tests share.

/// An actix System on a paused current-thread runtime (virtual time).
pub(crate) fn paused_system() -> actix::SystemRunner {
    actix::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("test runtime")
    })
}
