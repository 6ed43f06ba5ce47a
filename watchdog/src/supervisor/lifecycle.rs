//! The Supervisor actor: starts with the session, ends everything in order.
//!
//! Shutdown choreography: stop reading the client, wait (bounded) for replies still in flight,
//! stop every upstream (close its input, grace period, terminate its process tree), sweep any
//! orphan the servers left, flush the alerts, finish writing to the client, exit.

use super::orphans::sweep_orphans;
use super::upstream::{StopServer, Upstream, UpstreamFinished};
use crate::alert::{AlertSink, FlushAlerts};
use crate::proxy::session::{ClientClosed, CloseClient, Drain, Session};
use actix::prelude::*;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};
use tokio_stream::wrappers::SignalStream;

pub struct Supervisor {
    pub upstreams: Vec<Addr<Upstream>>,
    pub session: Addr<Session>,
    pub alerts: Addr<AlertSink>,
    pub drain_timeout: Duration,
    pub shutdown_grace: Duration,
    /// Wrap mode: the watchdog's exit status is its one server's.
    pub wrap: bool,
    finished: Vec<Option<(Option<ExitStatus>, bool)>>,
    shutting_down: bool,
}

/// A termination signal arrived.
struct Terminate(SignalKind);

impl Supervisor {
    pub fn new(
        upstreams: Vec<Addr<Upstream>>,
        session: Addr<Session>,
        alerts: Addr<AlertSink>,
        drain_timeout: Duration,
        shutdown_grace: Duration,
        wrap: bool,
    ) -> Self {
        let n = upstreams.len();
        Supervisor {
            upstreams,
            session,
            alerts,
            drain_timeout,
            shutdown_grace,
            wrap,
            finished: vec![None; n],
            shutting_down: false,
        }
    }

    fn shutdown(&mut self, drain: bool, ctx: &mut Context<Self>) {
        if self.shutting_down {
            return;
        }
        self.shutting_down = true;
        let session = self.session.clone();
        let upstreams = self.upstreams.clone();
        let alerts = self.alerts.clone();
        let (drain_timeout, grace) = (self.drain_timeout, self.shutdown_grace);
        let choreography = async move {
            if drain {
                let _ = session
                    .send(Drain {
                        timeout: drain_timeout,
                    })
                    .await;
            }
            let stops = upstreams.iter().map(|u| u.send(StopServer { grace }));
            let statuses: Vec<Option<ExitStatus>> = futures_util::future::join_all(stops)
                .await
                .into_iter()
                .map(|r| r.ok().flatten())
                .collect();
            sweep_orphans(grace).await;
            let _ = alerts.send(FlushAlerts).await;
            let _ = session.send(CloseClient).await;
            statuses
        };
        ctx.spawn(choreography.into_actor(self).map(|statuses, act, _| {
            let code = act.exit_code(&statuses);
            System::current().stop_with_code(code);
        }));
    }

    fn exit_code(&self, at_stop: &[Option<ExitStatus>]) -> i32 {
        if self.wrap {
            let status = self.finished[0]
                .and_then(|(s, _)| s)
                .or(at_stop.first().copied().flatten());
            return status.map(status_code).unwrap_or(1);
        }
        if self.finished.iter().any(|f| matches!(f, Some((_, true)))) {
            1
        } else {
            0
        }
    }
}

/// A process's exit status as a shell reports it.
fn status_code(s: ExitStatus) -> i32 {
    s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0))
}

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        for kind in [
            SignalKind::terminate(),
            SignalKind::interrupt(),
            SignalKind::hangup(),
        ] {
            match signal(kind) {
                Ok(s) => {
                    ctx.add_stream(SignalStream::new(s).map(move |_| Terminate(kind)));
                }
                Err(e) => tracing::warn!("cannot watch signal {kind:?}: {e}"),
            }
        }
    }
}

use futures_util::StreamExt;

impl StreamHandler<Terminate> for Supervisor {
    fn handle(&mut self, Terminate(kind): Terminate, ctx: &mut Context<Self>) {
        if self.shutting_down {
            // Asked twice: stop waiting for anyone.
            tracing::warn!("second termination signal; exiting now");
            for u in &self.upstreams {
                u.do_send(StopServer {
                    grace: Duration::ZERO,
                });
            }
            System::current().stop_with_code(128 + kind.as_raw_value());
            return;
        }
        tracing::info!("termination signal {kind:?}; shutting down");
        self.shutdown(true, ctx);
    }

    fn finished(&mut self, _ctx: &mut Context<Self>) {}
}

impl Handler<ClientClosed> for Supervisor {
    type Result = ();

    fn handle(&mut self, _: ClientClosed, ctx: &mut Context<Self>) {
        self.shutdown(true, ctx);
    }
}

impl Handler<UpstreamFinished> for Supervisor {
    type Result = ();

    fn handle(&mut self, f: UpstreamFinished, ctx: &mut Context<Self>) {
        self.finished[f.upstream] = Some((f.status, f.failed));
        if self.finished.iter().all(Option::is_some) {
            self.shutdown(false, ctx);
        }
    }
}
