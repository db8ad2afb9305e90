//! The test kit itself: the recorder keeps what it skips, waits on virtual
//! time, and the mock child really panics, hangs, stops and leaks.

use std::time::Duration;

use candado::testkit::{
    self, memory_sample, Crash, EventRecorder, Hang, Leak, MockChild, Ping, Quit, ReportMemory,
    WaitError,
};
use candado::{
    ChildSpec, EventKind, ExitReason, FixedSampler, Liveness, LivenessConfig, MemoryConfig,
    MemoryGuard, Restart, ShutdownPolicy, SupervisorSpec, VerdictKind,
};

const MIB: u64 = 1024 * 1024;

fn restarted(child: &'static str) -> impl Fn(&candado::Event) -> bool {
    move |e| matches!(&e.kind, EventKind::ChildRestarted { child: c, .. } if c == child)
}

#[test]
fn a_wait_keeps_the_events_it_skipped_for_later_waits_and_drains() {
    testkit::run_paused(|| async {
        let (a, mock) = MockChild::factory();
        let spec = SupervisorSpec::new("root")
            .child(ChildSpec::worker("a", a))
            .child(ChildSpec::worker("b", MockChild::new));
        let (runtime, events, _root) = testkit::start_local(spec).await;
        let mut events = EventRecorder::new(events);

        mock.addr().unwrap().do_send(Crash("boom"));
        events
            .wait_for(Duration::from_secs(5), restarted("a"))
            .await
            .unwrap();
        // The exit came before the restart: the first wait skipped it, and
        // a second wait still finds it without waiting at all.
        let before = tokio::time::Instant::now();
        let exit = events
            .wait_for(Duration::ZERO, |e| {
                matches!(e.kind, EventKind::ChildExited { .. })
            })
            .await
            .unwrap();
        assert!(matches!(
            &exit.kind,
            EventKind::ChildExited { reason: ExitReason::Panic(p), .. } if p.contains("boom")
        ));
        assert_eq!(before.elapsed(), Duration::ZERO);
        // The starts of both children (and of a's second incarnation) were
        // skipped too, and drain has them, in order.
        let rest = events.drain();
        let started: Vec<String> = testkit::starts(&rest).into_iter().map(|(_, c)| c).collect();
        assert_eq!(started, ["a", "b", "a"]);
        assert!(testkit::exits(&rest).is_empty(), "handed out once only");
        let history = events.history().to_vec();
        assert!(
            testkit::find(&history, |k| matches!(k, EventKind::ChildRestarted { .. })).is_some()
        );
        assert_eq!(events.lost(), 0);
        runtime.shutdown().await;
    });
}

#[test]
fn a_wait_times_out_on_virtual_time_and_keeps_what_came() {
    testkit::run_paused(|| async {
        let spec = SupervisorSpec::new("root").child(ChildSpec::worker("w", MockChild::new));
        let (runtime, events, _root) = testkit::start_local(spec).await;
        let mut events = EventRecorder::new(events);
        let before = tokio::time::Instant::now();
        let missing = events
            .wait_for(Duration::from_secs(3_600), |e| {
                matches!(e.kind, EventKind::Fatal { .. })
            })
            .await;
        assert_eq!(before.elapsed(), Duration::from_secs(3_600));
        let Err(WaitError::Timeout { skipped, .. }) = missing else {
            panic!("expected a timeout, got {missing:?}");
        };
        assert!(skipped >= 1, "the start was received and kept");
        assert_eq!(testkit::starts(&events.drain()).len(), 1);
        runtime.shutdown().await;
    });
}

#[test]
fn a_mock_child_stops_normally_and_counts_its_incarnations() {
    testkit::run_paused(|| async {
        let (factory, mock) = MockChild::factory();
        let spec = SupervisorSpec::new("root")
            .child(ChildSpec::worker("w", factory).restart(Restart::Transient));
        let (runtime, events, root) = testkit::start_local(spec).await;
        let mut events = EventRecorder::new(events);
        assert_eq!(mock.addr().unwrap().send(Ping).await.unwrap(), 1);
        mock.addr().unwrap().do_send(Quit);
        let exit = events
            .wait_for(Duration::from_secs(1), |e| {
                matches!(e.kind, EventKind::ChildExited { .. })
            })
            .await
            .unwrap();
        assert!(matches!(
            exit.kind,
            EventKind::ChildExited {
                reason: ExitReason::Normal,
                ..
            }
        ));
        testkit::advance(Duration::from_secs(60)).await;
        assert_eq!(
            (mock.starts(), mock.stops()),
            (1, 1),
            "a transient child stays down"
        );
        assert_eq!(root.children().await.unwrap()[0].incarnation, 1);
        runtime.shutdown().await;
    });
}

#[test]
fn a_hung_mock_child_answers_nothing_and_liveness_replaces_it() {
    testkit::run_paused(|| async {
        let (factory, mock) = MockChild::factory();
        let spec = SupervisorSpec::new("root")
            .health(
                Liveness::new(LivenessConfig {
                    ping_interval: None,
                    ..Default::default()
                })
                .unwrap(),
            )
            .child(
                ChildSpec::worker("w", factory)
                    .shutdown(ShutdownPolicy::Timeout(Duration::from_secs(1))),
            );
        let (runtime, events, _root) = testkit::start_local(spec).await;
        let mut events = EventRecorder::new(events);
        let hung = mock.addr().unwrap();
        hung.do_send(Hang);
        let ping = tokio::time::timeout(Duration::from_secs(5), hung.send(Ping)).await;
        assert!(ping.is_err(), "a hung child answers nothing");
        let exit = events
            .wait_for(Duration::from_secs(60), |e| {
                matches!(e.kind, EventKind::ChildExited { .. })
            })
            .await
            .unwrap();
        assert!(
            matches!(&exit.kind, EventKind::ChildExited { reason: ExitReason::Unhealthy { strategy, .. }, .. } if strategy == "liveness"),
            "{exit:?}"
        );
        events
            .wait_for(Duration::from_secs(60), restarted("w"))
            .await
            .unwrap();
        assert_eq!(mock.starts(), 2);
        assert_eq!(mock.addr().unwrap().send(Ping).await.unwrap(), 2);
        runtime.shutdown().await;
    });
}

#[test]
fn a_leaking_mock_child_is_caught_by_the_memory_strategy() {
    testkit::run_paused(|| async {
        let (factory, mock) = MockChild::factory();
        let guard = MemoryGuard::new(MemoryConfig::default())
            .unwrap()
            .with_sampler(FixedSampler::new(memory_sample(10)));
        let spec = SupervisorSpec::new("root")
            .health(guard)
            .child(ChildSpec::worker("leaky", factory));
        let (runtime, events, _root) = testkit::start_local(spec).await;
        let mut events = EventRecorder::new(events);
        mock.addr().unwrap().do_send(ReportMemory(1024 * MIB));
        // 100 MiB more every minute: over the default 50 MiB/min leak rate.
        let restart = loop {
            testkit::advance(Duration::from_secs(60)).await;
            if let Ok(verdict) = events
                .wait_for(Duration::ZERO, |e| {
                    matches!(
                        e.kind,
                        EventKind::VerdictChanged {
                            verdict: VerdictKind::Restart,
                            ..
                        }
                    )
                })
                .await
            {
                break verdict;
            }
            assert!(mock.starts() == 1, "restarted without a verdict");
            mock.addr().unwrap().do_send(Leak(100 * MIB));
        };
        assert!(
            matches!(&restart.kind, EventKind::VerdictChanged { reason: Some(r), .. } if r.starts_with("leak")),
            "{restart:?}"
        );
        assert!(restart.at_ms <= 6 * 60_000, "caught within minutes");
        runtime.shutdown().await;
    });
}
