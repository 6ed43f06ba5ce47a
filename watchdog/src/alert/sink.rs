//! Where alerts go: the `AlertSink` actor, and the synchronous `AlertPipeline` it wraps (repeat
//! suppression, then stderr in the chosen style, then the audit log).

use crate::alert::aggregate::RepeatAggregator;
use crate::alert::audit::AuditLog;
use crate::alert::human::human_line;
use crate::alert::model::Alert;
use actix::{Actor, AsyncContext, Context, Handler, Message};
use std::io::{self, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How alerts look on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StderrStyle {
    /// One readable line per alert.
    Human { colour: bool },
    /// One JSON object per line (`--alerts-json`).
    Json,
    /// Nothing on stderr; the audit log is still written.
    Quiet,
}

#[derive(Debug, Clone)]
pub struct AlertSinkConfig {
    pub stderr: StderrStyle,
    /// `None` keeps no audit log.
    pub audit_path: Option<PathBuf>,
    /// Identical alerts within this window are shown once plus a summary; zero shows every one.
    pub repeat_window: Duration,
}

/// The sink's logic without the actor, for tests and synchronous callers. `now` is passed in so
/// windows can be tested without sleeping.
pub struct AlertPipeline {
    style: StderrStyle,
    stderr: Box<dyn Write + Send>,
    audit: Option<AuditLog>,
    repeats: RepeatAggregator,
    /// Set while audit writes fail, so a broken disk logs one error, not one per alert.
    audit_failing: bool,
    emitted: Vec<Alert>,
}

impl AlertPipeline {
    /// Opens the audit log, if configured; its error is returned so the caller can report it.
    pub fn new(cfg: &AlertSinkConfig, stderr: Box<dyn Write + Send>) -> io::Result<Self> {
        let audit = cfg.audit_path.as_deref().map(AuditLog::open).transpose()?;
        Ok(AlertPipeline {
            style: cfg.stderr,
            stderr,
            audit,
            repeats: RepeatAggregator::new(cfg.repeat_window),
            audit_failing: false,
            emitted: Vec::new(),
        })
    }

    pub fn raise(&mut self, alert: Alert, now: Instant) {
        let mut out = std::mem::take(&mut self.emitted);
        self.repeats.observe(alert, now, &mut out);
        self.emit_all(&mut out);
        self.emitted = out;
    }

    /// Closes the repeat windows that have run out by `now`.
    pub fn tick(&mut self, now: Instant) {
        let mut out = std::mem::take(&mut self.emitted);
        self.repeats.expire(now, &mut out);
        self.emit_all(&mut out);
        self.emitted = out;
    }

    /// Closes every repeat window and flushes stderr (audit records are synced as they are written).
    pub fn flush(&mut self) {
        let mut out = std::mem::take(&mut self.emitted);
        self.repeats.flush(&mut out);
        self.emit_all(&mut out);
        self.emitted = out;
        // Nowhere left to report a broken stderr.
        let _ = self.stderr.flush();
    }

    fn emit_all(&mut self, alerts: &mut Vec<Alert>) {
        for alert in alerts.drain(..) {
            self.write_stderr(&alert);
            self.write_audit(&alert);
        }
    }

    fn write_stderr(&mut self, alert: &Alert) {
        let line = match self.style {
            StderrStyle::Human { colour } => human_line(alert, colour, self.repeats.window()),
            StderrStyle::Json => match serde_json::to_string(alert) {
                Ok(json) => json,
                Err(err) => {
                    tracing::error!(%err, "cannot serialize alert");
                    return;
                }
            },
            StderrStyle::Quiet => return,
        };
        // One write per line, so lines from other writers to stderr do not interleave within it.
        // A closed stderr is not worth stopping the audit log for.
        let _ = self.stderr.write_all(format!("{line}\n").as_bytes());
    }

    fn write_audit(&mut self, alert: &Alert) {
        let Some(audit) = &mut self.audit else {
            return;
        };
        match audit.append(alert) {
            Ok(()) => {
                if self.audit_failing {
                    tracing::info!(path = %audit.path().display(), "audit log writable again");
                }
                self.audit_failing = false;
            }
            Err(err) => {
                if !self.audit_failing {
                    tracing::error!(
                        path = %audit.path().display(),
                        %err,
                        "cannot append to the audit log; alerts still go to stderr"
                    );
                }
                self.audit_failing = true;
            }
        }
    }
}

/// Raise an alert: it is shown and recorded (or counted, if it repeats).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct RaiseAlert(pub Alert);

/// Close all repeat windows and emit their summaries; sent before shutting down.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct FlushAlerts;

/// The actor every component sends its alerts to.
pub struct AlertSink {
    pipeline: AlertPipeline,
}

impl AlertSink {
    /// A sink writing to this process's stderr.
    pub fn new(cfg: AlertSinkConfig) -> io::Result<AlertSink> {
        Ok(Self::from_pipeline(AlertPipeline::new(
            &cfg,
            Box::new(io::stderr()),
        )?))
    }

    pub fn from_pipeline(pipeline: AlertPipeline) -> AlertSink {
        AlertSink { pipeline }
    }
}

impl Actor for AlertSink {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let window = self.pipeline.repeats.window();
        if window.is_zero() {
            return;
        }
        // Summaries appear at most a tenth of a window (and at most a second) late.
        let every = (window / 10).clamp(Duration::from_millis(10), Duration::from_secs(1));
        ctx.run_interval(every, |sink, _| sink.pipeline.tick(Instant::now()));
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.pipeline.flush();
    }
}

impl Handler<RaiseAlert> for AlertSink {
    type Result = ();

    fn handle(&mut self, RaiseAlert(alert): RaiseAlert, _: &mut Context<Self>) {
        self.pipeline.raise(alert, Instant::now());
    }
}

impl Handler<FlushAlerts> for AlertSink {
    type Result = ();

    fn handle(&mut self, _: FlushAlerts, _: &mut Context<Self>) {
        self.pipeline.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::audit::verify;
    use crate::alert::model::{ActionTaken, Severity};
    use std::sync::{Arc, Mutex};

    /// A stderr stand-in the test can read back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn lines(&self) -> Vec<String> {
            let bytes = self.0.lock().unwrap();
            String::from_utf8(bytes.clone())
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect()
        }
    }

    fn denied() -> Alert {
        Alert::new(
            "TOOL-POLICY",
            "tool denied by policy",
            Severity::High,
            ActionTaken::Blocked,
            "blocked call to delete_everything",
        )
        .server("demo")
        .method(Some("tools/call"))
    }

    fn pipeline(stderr: StderrStyle, audit_path: Option<PathBuf>) -> (AlertPipeline, Captured) {
        let captured = Captured::default();
        let cfg = AlertSinkConfig {
            stderr,
            audit_path,
            repeat_window: Duration::from_secs(10),
        };
        let pipeline = AlertPipeline::new(&cfg, Box::new(captured.clone())).unwrap();
        (pipeline, captured)
    }

    #[test]
    fn flood_is_one_line_and_a_summary_on_stderr_and_in_the_audit_log() {
        let dir = tempfile::tempdir().unwrap();
        let audit = dir.path().join("audit.jsonl");
        let (mut p, captured) = pipeline(StderrStyle::Human { colour: false }, Some(audit.clone()));
        let start = Instant::now();
        for i in 0..100 {
            p.raise(denied(), start + Duration::from_millis(i));
        }
        p.tick(start + Duration::from_secs(10));
        let lines = captured.lines();
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert!(!lines[0].contains("repeated"));
        assert!(lines[1].ends_with("(repeated 99 more times in the last 10s)"));
        assert_eq!(verify(&audit).unwrap().records, 2);
        let summary: serde_json::Value = serde_json::from_str(
            std::fs::read_to_string(&audit)
                .unwrap()
                .lines()
                .nth(1)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(summary["alert"]["repeats"], 99);
    }

    #[test]
    fn json_lines_parse_back_with_the_key_fields() {
        let (mut p, captured) = pipeline(StderrStyle::Json, None);
        let now = Instant::now();
        p.raise(denied(), now);
        p.raise(denied().server("other"), now);
        p.raise(denied().server("other"), now);
        p.flush();
        let lines = captured.lines();
        assert_eq!(lines.len(), 3);
        for line in &lines {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            let object = value.as_object().expect("an object per line");
            for key in ["rule", "severity", "action", "server"] {
                assert!(object.contains_key(key), "{key} missing in {line}");
            }
            assert_eq!(object["severity"], "high");
            assert_eq!(object["action"], "blocked");
        }
        let last: serde_json::Value = serde_json::from_str(&lines[2]).unwrap();
        assert_eq!(last["repeats"], 1);
        let first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert!(
            first.get("repeats").is_none(),
            "first occurrences carry no count"
        );
    }

    #[test]
    fn quiet_writes_only_the_audit_log() {
        let dir = tempfile::tempdir().unwrap();
        let audit = dir.path().join("audit.jsonl");
        let (mut p, captured) = pipeline(StderrStyle::Quiet, Some(audit.clone()));
        p.raise(denied(), Instant::now());
        p.flush();
        assert!(captured.lines().is_empty());
        assert_eq!(verify(&audit).unwrap().records, 1);
    }

    #[test]
    fn failing_audit_log_does_not_lose_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let audit = dir.path().join("audit.jsonl");
        let (mut p, captured) = pipeline(StderrStyle::Json, Some(audit.clone()));
        // A torn last record makes every append fail.
        std::fs::write(&audit, "{\"seq\":1,").unwrap();
        let now = Instant::now();
        p.raise(denied(), now);
        p.raise(denied().server("second"), now);
        assert_eq!(captured.lines().len(), 2);
        assert!(p.audit_failing);
    }

    #[test]
    fn unopenable_audit_log_is_reported_to_the_caller() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "").unwrap();
        let cfg = AlertSinkConfig {
            stderr: StderrStyle::Quiet,
            audit_path: Some(blocker.join("audit.jsonl")),
            repeat_window: Duration::from_secs(10),
        };
        assert!(AlertSink::new(cfg).is_err());
    }

    #[actix_rt::test]
    async fn actor_shows_first_occurrence_and_summary_on_flush() {
        let captured = Captured::default();
        let cfg = AlertSinkConfig {
            stderr: StderrStyle::Json,
            audit_path: None,
            repeat_window: Duration::from_secs(60),
        };
        let pipeline = AlertPipeline::new(&cfg, Box::new(captured.clone())).unwrap();
        let sink = AlertSink::from_pipeline(pipeline).start();
        for _ in 0..5 {
            sink.send(RaiseAlert(denied())).await.unwrap();
        }
        assert_eq!(captured.lines().len(), 1);
        sink.send(FlushAlerts).await.unwrap();
        let lines = captured.lines();
        assert_eq!(lines.len(), 2);
        let summary: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(summary["repeats"], 4);
    }

    #[actix_rt::test]
    async fn actor_closes_windows_on_its_own() {
        let captured = Captured::default();
        let cfg = AlertSinkConfig {
            stderr: StderrStyle::Json,
            audit_path: None,
            repeat_window: Duration::from_millis(100),
        };
        let pipeline = AlertPipeline::new(&cfg, Box::new(captured.clone())).unwrap();
        let sink = AlertSink::from_pipeline(pipeline).start();
        for _ in 0..3 {
            sink.send(RaiseAlert(denied())).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(
            captured.lines().len(),
            2,
            "summary without an explicit flush"
        );
    }
}
