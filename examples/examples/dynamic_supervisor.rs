//! A dynamic supervisor (OTP's `simple_one_for_one`, Elixir's
//! `DynamicSupervisor`): one template, children started at run time with
//! arguments, a bound on their number, one-for-one restarts.
//!
//! Run: `cargo run -p candado-examples --bin dynamic_supervisor`

use std::time::{Duration, Instant};

use actix::{Actor, ActorContext, Context, Handler, Message};
use candado::{
    BackoffConfig, ChildLink, DynamicError, DynamicSpec, EventKind, Restart, Runtime,
    SupervisorSpec,
};
use candado_examples::{restarted, show_queued, show_until};

/// One user's session: started with the user's name.
struct Session {
    user: String,
    link: ChildLink,
}

impl Actor for Session {
    type Context = Context<Self>;
}

#[derive(Message)]
#[rtype(result = "String")]
struct Hello;

#[derive(Message)]
#[rtype(result = "()")]
enum End {
    Crash,
    LogOut,
}

impl Handler<Hello> for Session {
    type Result = String;
    fn handle(&mut self, _: Hello, _: &mut Context<Self>) -> String {
        format!(
            "hello {}, from incarnation {}",
            self.user,
            self.link.incarnation()
        )
    }
}

impl Handler<End> for Session {
    type Result = ();
    fn handle(&mut self, end: End, ctx: &mut Context<Self>) {
        match end {
            End::Crash => panic!("{}'s session hit a bug", self.user),
            End::LogOut => ctx.stop(),
        }
    }
}

fn main() -> anyhow::Result<()> {
    std::panic::set_hook(Box::new(|info| eprintln!("(a child panicked: {info})")));
    Runtime::builder()
        .worker_threads(2)
        .run(async |runtime| -> anyhow::Result<()> {
            let mut events = runtime.subscribe();

            // Transient: restarted after a crash, forgotten after a normal exit.
            let sessions =
                DynamicSpec::new("sessions", |link, user: String| Session { user, link })
                    .restart(Restart::Transient)
                    .max_children(3)
                    .intensity(10, Duration::from_secs(10))
                    .backoff(BackoffConfig {
                        base: Duration::from_millis(50),
                        ..BackoffConfig::default()
                    });
            // A child of an ordinary tree: shutdown order and escalation apply.
            let tree = SupervisorSpec::new("app").child(sessions.child_spec());
            let app = runtime.start(tree).await?;
            let sessions = sessions.attach(&app);

            let mut started = Vec::new();
            for user in ["ada", "grace", "barbara"] {
                let child = sessions.start_child(user.to_owned()).await?;
                println!("started {user} as child {}", child.id());
                started.push(child);
            }
            match sessions.start_child("edsger".to_owned()).await {
                Err(e @ DynamicError::Full { .. }) => println!("a fourth session: {e}"),
                other => anyhow::bail!("expected a full supervisor, got {other:?}"),
            }
            show_queued(&mut events);

            println!("\nada's session crashes; only it restarts:");
            let ada = started[0].id().to_owned();
            if let Some(addr) = started[0].addr() {
                addr.do_send(End::Crash);
            }
            show_until(&mut events, Duration::from_secs(5), |e| restarted(e, &ada)).await?;
            println!("{}", sessions.worker(&ada).await?.send(Hello).await?);

            println!("\ngrace logs out (a normal exit): her session is forgotten, its slot freed:");
            if let Some(addr) = started[1].addr() {
                addr.do_send(End::LogOut);
            }
            let grace = started[1].id().to_owned();
            show_until(
                &mut events,
                Duration::from_secs(5),
                |e| matches!(&e.kind, EventKind::ChildExited { child, .. } if *child == grace),
            )
            .await?;
            println!(
                "sessions held: {} of {}",
                sessions.count_children(),
                sessions.max_children()
            );
            let edsger = sessions.start_child("edsger".to_owned()).await?;
            println!("edsger now fits, as child {}", edsger.id());

            println!("\nbarbara's session is terminated by the application:");
            sessions.terminate_child(started[2].id()).await?;
            for child in sessions.which_children().await? {
                println!(
                    "  child {}: {:?}, {} restarts",
                    child.id, child.status, child.restarts
                );
            }

            // Thousands of children are cheap to start and to count.
            let many = DynamicSpec::new("many", |link, n: u32| Session {
                user: format!("user-{n}"),
                link,
            })
            .start(runtime)
            .await?;
            let clock = Instant::now();
            let starts: Vec<_> = (0..2_000).map(|n| many.start_child(n)).collect();
            for start in starts {
                start.await?;
            }
            println!(
                "\nstarted {} children of `many` in {:.0} ms; counting them is one atomic read",
                many.count_children(),
                clock.elapsed().as_secs_f64() * 1e3
            );

            // `run` shuts down what is still running (`many`) when this returns.
            println!("\nshutting down the app's tree:");
            app.shutdown().await;
            println!(
                "sessions held after the shutdown: {}",
                sessions.count_children()
            );
            Ok(())
        })?
}
