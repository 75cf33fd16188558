//! The command that `quorate elect` and `quorate lock` run while they lead: started in a
//! process group of its own (so a signal reaches everything it started, and the
//! terminal's Ctrl-C reaches quorate, which stops it in order), stopped with SIGTERM,
//! then SIGKILL once its grace is over.

use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rustix::process::{kill_process_group, Pid, Signal};

/// A running command.
pub struct Running {
    child: tokio::process::Child,
    /// Its process group (its own pid).
    group: Option<Pid>,
    pid: u32,
}

/// Starts `argv` (the program and its arguments) with `env` added to quorate's own
/// environment, in a new process group; stdin, stdout and stderr are quorate's.
pub fn spawn(argv: &[String], env: &[(&str, String)]) -> Result<Running> {
    let (program, args) = argv.split_first().context("no command to run")?;
    let child = tokio::process::Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v)))
        .stdin(Stdio::inherit())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot run {program:?}"))?;
    let pid = child.id().context("the command exited at once")?;
    let group = i32::try_from(pid).ok().and_then(Pid::from_raw);
    Ok(Running { child, group, pid })
}

impl Running {
    /// The command's process id (and process group).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends `signal` to the command's whole process group. A group that is gone
    /// already is not an error.
    pub fn signal(&self, signal: Signal) {
        if let Some(group) = self.group {
            // ESRCH: every process of the group has exited.
            let _ = kill_process_group(group, signal);
        }
    }

    /// Waits until the command exits; what it left running in its process group is
    /// killed then, so nothing of it outlives the leadership it ran under.
    pub async fn wait(&mut self) -> Result<ExitStatus> {
        let status = self
            .child
            .wait()
            .await
            .context("cannot wait for the command")?;
        self.signal(Signal::KILL);
        Ok(status)
    }

    /// Stops the command: SIGTERM to its process group, then SIGKILL when `grace` is
    /// over or `kill_by()` comes, whichever is first (`kill_by` is read again as it
    /// may move: a lease renewed meanwhile). `on_signal` hears of each signal sent.
    pub async fn stop(
        &mut self,
        grace: Duration,
        kill_by: impl Fn() -> Instant,
        mut on_signal: impl FnMut(&'static str),
    ) -> Result<ExitStatus> {
        let give_up = Instant::now() + grace;
        self.signal(Signal::TERM);
        on_signal("SIGTERM");
        loop {
            let at = give_up.min(kill_by());
            tokio::select! {
                status = self.wait() => return status,
                () = tokio::time::sleep_until(at.into()) => {
                    if Instant::now() >= give_up.min(kill_by()) {
                        break;
                    }
                }
            }
        }
        self.signal(Signal::KILL);
        on_signal("SIGKILL");
        self.wait().await
    }
}

/// The exit code quorate passes on for a command's `status`: its own code, or 128 plus
/// the signal that ended it (as shells report it).
pub fn exit_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code & 0xff).unwrap_or(1),
        (None, Some(signal)) => u8::try_from((128 + signal) & 0xff).unwrap_or(1),
        (None, None) => 1,
    }
}

/// A status's fields for the `command_exited` line: `code` or `signal`.
pub fn status_fields(status: ExitStatus) -> serde_json::Map<String, serde_json::Value> {
    let mut f = serde_json::Map::new();
    f.insert("code".into(), serde_json::json!(status.code()));
    f.insert("signal".into(), serde_json::json!(status.signal()));
    f.insert("exit".into(), serde_json::json!(exit_code(status)));
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<String> {
        ["sh", "-c", script].map(String::from).to_vec()
    }

    #[tokio::test]
    async fn the_command_sees_the_environment_and_its_code_is_passed_on() {
        let mut c = spawn(&sh("exit $QUORATE_TEST"), &[("QUORATE_TEST", "3".into())]).unwrap();
        assert_eq!(exit_code(c.wait().await.unwrap()), 3);
    }

    #[tokio::test]
    async fn a_stop_reaches_the_whole_group_and_kills_what_ignores_it() {
        // The shell ignores SIGTERM (once it says so), so only SIGKILL ends it, once
        // the grace is over.
        let dir = tempfile::tempdir().unwrap();
        let ready = dir.path().join("ready");
        let env = [("READY", ready.to_str().unwrap().to_owned())];
        let script = "trap '' TERM; touch \"$READY\"; sleep 60 & wait";
        let mut c = spawn(&sh(script), &env).unwrap();
        while !ready.exists() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut sent = Vec::new();
        let far = Instant::now() + Duration::from_secs(600);
        let status = c
            .stop(Duration::from_millis(200), || far, |s| sent.push(s))
            .await
            .unwrap();
        assert_eq!(sent, ["SIGTERM", "SIGKILL"]);
        assert_eq!(exit_code(status), 128 + 9);
    }

    #[tokio::test]
    async fn a_command_that_stops_on_sigterm_is_not_killed() {
        let mut c = spawn(&sh("sleep 60 & wait"), &[]).unwrap();
        let mut sent = Vec::new();
        let far = Instant::now() + Duration::from_secs(600);
        let status = c
            .stop(Duration::from_secs(600), || far, |s| sent.push(s))
            .await
            .unwrap();
        assert_eq!(sent, ["SIGTERM"]);
        assert_eq!(exit_code(status), 128 + 15);
    }
}
