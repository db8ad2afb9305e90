//! The config's parsing, defaults and validation.

use super::*;

#[test]
fn json_and_toml_agree_and_defaults_fill_in() {
    let toml =
        PoolConfig::from_toml("name = \"p\"\nsize = 2\n[retry]\nbase = \"500ms\"\n").unwrap();
    let json = PoolConfig::from_json(r#"{"name":"p","size":2,"retry":{"base":"500ms"}}"#).unwrap();
    assert_eq!(toml, json);
    assert_eq!(toml.retry.base, Duration::from_millis(500));
    assert_eq!(toml.retry.max_retries, 3);
    assert!(toml.liveness.is_some() && toml.memory.is_none());
}

#[test]
fn errors_name_the_field() {
    let cases = [
        ("size = 0", "size"),
        ("concurrency = 0", "concurrency"),
        ("batch = 0", "batch"),
        ("min_size = 4\nmax_size = 2", "max_size"),
        ("size = 100", "size"),
        ("[retry]\nbase = \"10s\"\ncap = \"1s\"", "retry.cap"),
        ("[retry]\njitter = 2.0", "retry.jitter"),
        ("[liveness]\nheartbeat_timeout = \"1s\"", "liveness"),
        ("[breaker]\nhalf_open_probes = 1", "breaker"),
        (
            "[autoscale]\nqueue_per_worker = 0",
            "autoscale.queue_per_worker",
        ),
    ];
    for (text, field) in cases {
        match PoolConfig::from_toml(text) {
            Err(ConfigError::Invalid { field: f, .. }) => assert_eq!(f, field, "{text}"),
            other => panic!("{text}: {other:?}"),
        }
    }
    assert!(matches!(
        PoolConfig::from_toml("sise = 3"),
        Err(ConfigError::Parse(_))
    ));
    assert!(matches!(
        PoolConfig::from_json("{"),
        Err(ConfigError::Parse(_))
    ));
}

mod sections {
    use std::collections::BTreeSet;

    use candado::{
        BackoffConfig, BackoffSteps, BreakerConfig, HealLimit, Intensity, LivenessConfig,
        MemoryConfig, VictimPolicy,
    };
    use serde::Serialize;

    use super::super::{BreakerSettings, PoolConfig, PoolDefault, RestartSettings};
    use crate::ConfigError;
    use std::time::Duration;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn keys<T: Serialize>(value: &T) -> BTreeSet<String> {
        serde_json::to_value(value)
            .unwrap()
            .as_object()
            .expect("a section serializes as a table")
            .keys()
            .cloned()
            .collect()
    }

    /// Every knob of `varied` differs from `default`: the round trip below
    /// then proves each one reaches the pool. A knob added to the framework
    /// without a value here fails this test.
    fn assert_every_knob_varies<T: Serialize>(default: &T, varied: &T) {
        let (d, v) = (
            serde_json::to_value(default).unwrap(),
            serde_json::to_value(varied).unwrap(),
        );
        let same: Vec<&String> = d
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, value)| v.get(k.as_str()) == Some(value))
            .map(|(k, _)| k)
            .collect();
        assert!(same.is_empty(), "knobs left at their default: {same:?}");
    }

    /// `[section]` written from the framework's own serialization of `value`.
    fn pool_with<T: Serialize>(section: &str, value: &T) -> PoolConfig {
        let text = format!("[{section}]\n{}", toml::to_string(value).unwrap());
        PoolConfig::from_toml(&text).unwrap_or_else(|e| panic!("{text}\n{e}"))
    }

    #[test]
    fn a_full_framework_config_round_trips_through_the_pools_sections() {
        let liveness = LivenessConfig {
            heartbeat_interval: Some(secs(3)),
            heartbeat_timeout: secs(11),
            ping_interval: None,
            pong_timeout: secs(4),
            miss_threshold: 6,
            progress_timeout: Some(secs(61)),
        };
        assert_every_knob_varies(&LivenessConfig::default(), &liveness);
        assert_eq!(pool_with("liveness", &liveness).liveness, Some(liveness));

        let memory = MemoryConfig {
            warning_percent: Some(80.5),
            critical_percent: None,
            warning_rss: Some(1 << 30),
            critical_rss: Some(2 << 30),
            child_warning_bytes: Some(100),
            child_critical_bytes: Some(200),
            victim: VictimPolicy::Oldest,
            settle: secs(31),
            brake_floor: None,
            brake_limit: 11,
            brake_reset: secs(61),
            leak_rate_per_min: None,
            leak_window: secs(301),
            max_age: Some(secs(3600)),
            max_tasks: Some(1_000),
            report_interval: secs(3),
        };
        assert_every_knob_varies(&MemoryConfig::default(), &memory);
        assert_eq!(pool_with("memory", &memory).memory, Some(memory));

        let breaker = BreakerConfig {
            failure_threshold: 6,
            failure_rate: Some(0.5),
            rate_window: 21,
            rate_min_calls: 11,
            success_threshold: 3,
            half_open_probes: 3,
            cooldown_base: secs(6),
            cooldown_cap: secs(61),
            stability_window: secs(62),
        };
        assert_every_knob_varies(&BreakerConfig::default(), &breaker);
        let got = pool_with("breaker", &breaker).breaker.unwrap();
        assert_eq!((got.config, got.max_ejected_percent), (breaker, 50));

        let heal = HealLimit {
            max: 4,
            period: secs(7200),
            min_gap: secs(360),
        };
        assert_every_knob_varies(&HealLimit::default(), &heal);
        assert_eq!(pool_with("heal_limit", &heal).heal_limit, heal);

        let intensity = Intensity {
            max_restarts: 7,
            period: secs(31),
        };
        let backoff = BackoffConfig {
            base: Duration::from_millis(200),
            cap: secs(20),
            jitter: 0.3,
            stability_window: secs(45),
            multiplier: 3.0,
            steps: Some(BackoffSteps::new(&[secs(1), secs(5)]).unwrap()),
        };
        assert_every_knob_varies(&Intensity::default(), &intensity);
        assert_every_knob_varies(&BackoffConfig::default(), &backoff);
        let restart = RestartSettings { intensity, backoff };
        assert_eq!(pool_with("restart", &restart).restart, restart);
        // Each framework config's keys are exactly its section's keys.
        let section: BTreeSet<String> =
            keys(&intensity).into_iter().chain(keys(&backoff)).collect();
        assert_eq!(keys(&restart), section);
        let mut breaker_keys = keys(&breaker);
        breaker_keys.insert("max_ejected_percent".into());
        assert_eq!(keys(&BreakerSettings::default()), breaker_keys);
    }

    /// The pool's defaults differ from Candado's in the listed knobs, and
    /// only there.
    fn assert_differences_listed<T: PoolDefault + Serialize>() {
        let (framework, pool) = (
            serde_json::to_value(T::framework_default()).unwrap(),
            serde_json::to_value(T::pool_default()).unwrap(),
        );
        let differing: BTreeSet<&str> = framework
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, v)| pool.get(k.as_str()) != Some(v))
            .map(|(k, _)| k.as_str())
            .collect();
        let listed: BTreeSet<&str> = T::DIFFERENCES.iter().map(|(k, _)| *k).collect();
        assert_eq!(differing, listed, "{}", std::any::type_name::<T>());
    }

    #[test]
    fn the_pools_defaults_differ_only_where_listed_and_fill_missing_keys() {
        assert_differences_listed::<LivenessConfig>();
        assert_differences_listed::<MemoryConfig>();
        assert_differences_listed::<HealLimit>();
        assert_differences_listed::<RestartSettings>();
        assert_differences_listed::<BreakerSettings>();

        let empty = PoolConfig::from_toml("[liveness]\n[restart]\n[memory]\n").unwrap();
        assert_eq!(empty.liveness, Some(LivenessConfig::pool_default()));
        assert_eq!(empty.restart, RestartSettings::pool_default());
        assert_eq!(empty.memory, Some(MemoryConfig::default()));
        assert_eq!(
            empty,
            PoolConfig::from_json(r#"{"liveness": true, "memory": true}"#).unwrap()
        );
        let set = PoolConfig::from_toml(
            "[liveness]\nprogress_timeout = \"2m\"\n[restart]\nperiod = \"10s\"\n",
        )
        .unwrap();
        assert_eq!(set.liveness.unwrap().progress_timeout, Some(secs(120)));
        assert_eq!(set.restart.intensity.period, secs(10));
        assert_eq!(set.restart.intensity.max_restarts, 50);
        assert_eq!(PoolConfig::default().restart.intensity.max_restarts, 50);
    }

    #[test]
    fn restart_takes_the_old_backoff_names_and_the_new_knobs() {
        let config = PoolConfig::from_toml(
            "supervisor_tick = \"250ms\"\n[restart]\nbackoff_base = \"1s\"\nbackoff_cap = \"8s\"\n\
             multiplier = 4.0\nstability_window = \"2m\"\njitter = 0.0\n",
        )
        .unwrap();
        let b = config.restart.backoff;
        assert_eq!((b.base, b.cap, b.multiplier), (secs(1), secs(8), 4.0));
        assert_eq!((b.stability_window, b.jitter), (secs(120), 0.0));
        assert_eq!(config.supervisor_tick, Duration::from_millis(250));
        let audit =
            PoolConfig::from_toml("[restart]\ndelays = [\"1m\", \"5m\", \"30m\"]\ncap = \"30m\"\n")
                .unwrap();
        let minutes: Vec<u64> = (0..4)
            .map(|n| audit.restart.backoff.raw_delay(n).as_secs() / 60)
            .collect();
        assert_eq!(minutes, [1, 5, 30, 30]);
    }

    #[test]
    fn section_errors_stay_typed_and_name_the_knob() {
        let invalid = [
            ("[restart]\nbase = \"10s\"\ncap = \"1s\"", "restart.cap"),
            (
                "[restart]\nbackoff_base = \"10s\"\nbackoff_cap = \"1s\"",
                "restart.cap",
            ),
            ("[restart]\nmultiplier = 0.5", "restart.multiplier"),
            ("[restart]\njitter = 1.5", "restart.jitter"),
            ("[restart]\nperiod = \"0s\"", "restart.period"),
            ("supervisor_tick = \"0s\"", "supervisor_tick"),
            ("[heal_limit]\nperiod = \"0s\"", "heal_limit.period"),
            ("[memory]\nreport_interval = \"0s\"", "memory"),
            (
                "[breaker]\nfailure_rate = 0.5\nrate_min_calls = 30",
                "breaker",
            ),
            (
                "[breaker]\nmax_ejected_percent = 101",
                "breaker.max_ejected_percent",
            ),
        ];
        for (text, field) in invalid {
            match PoolConfig::from_toml(text) {
                Err(ConfigError::Invalid { field: f, problem }) => {
                    assert_eq!(f, field, "{text}");
                    assert!(!problem.is_empty());
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        let unparsable = [
            ("[restart]\nbackof_base = \"1s\"", "backof_base"),
            ("[breaker]\nfailure_treshold = 3", "failure_treshold"),
            ("[liveness]\nheartbeat = \"1s\"", "heartbeat"),
            ("[memory]\nvictim = \"youngest\"", "youngest"),
            (
                "[restart]\ndelays = [\"5m\", \"1m\"]",
                "shorter than the one before",
            ),
            ("[restart]\ndelays = []", "empty"),
            ("[liveness]\nheartbeat_timeout = \"soon\"", "soon"),
        ];
        for (text, word) in unparsable {
            match PoolConfig::from_toml(text) {
                Err(ConfigError::Parse(message)) => {
                    assert!(message.contains(word), "{text}: {message}")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }
}
