//! Ctrl-C and SIGTERM for the commands that run long (apply, logs --follow): the first
//! stops starting work, the second stops waiting.

use std::io::Write;

use tokio::sync::watch;

use crate::render;

/// A signal that stops a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    Interrupt,
    Terminate,
}

impl StopSignal {
    pub fn exit_code(self) -> u8 {
        match self {
            StopSignal::Interrupt => 130,
            StopSignal::Terminate => 143,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            StopSignal::Interrupt => "Ctrl-C",
            StopSignal::Terminate => "SIGTERM",
        }
    }
}

/// Ctrl-C and SIGTERM, counted: the first stops starting work, the second stops waiting.
pub struct Signals {
    /// The first signal, and how many came.
    state: watch::Receiver<(Option<StopSignal>, u32)>,
}

impl Signals {
    pub fn listen() -> Signals {
        let (send, state) = watch::channel((None, 0u32));
        tokio::spawn(async move {
            #[cfg(unix)]
            let mut terminate =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            loop {
                #[cfg(unix)]
                let signal = tokio::select! {
                    Ok(()) = tokio::signal::ctrl_c() => StopSignal::Interrupt,
                    Some(()) = async {
                        match terminate.as_mut() {
                            Some(t) => t.recv().await,
                            None => None,
                        }
                    } => StopSignal::Terminate,
                    else => return,
                };
                #[cfg(not(unix))]
                let signal = match tokio::signal::ctrl_c().await {
                    Ok(()) => StopSignal::Interrupt,
                    Err(_) => std::future::pending().await,
                };
                send.send_modify(|(first, count)| {
                    first.get_or_insert(signal);
                    *count += 1;
                });
                tracing::info!(signal = signal.name(), "stopping");
            }
        });
        Signals { state }
    }

    /// The first signal, if one came.
    pub fn signal(&self) -> Option<StopSignal> {
        self.state.borrow().0
    }

    /// Resolves at the first signal.
    pub fn stopped(&self) -> impl std::future::Future<Output = ()> + use<> {
        let mut state = self.state.clone();
        async move {
            let _ = state.wait_for(|(_, count)| *count >= 1).await;
        }
    }

    /// Resolves `grace` after the first signal, or at the second.
    pub fn give_up(
        &self,
        grace: std::time::Duration,
    ) -> impl std::future::Future<Output = ()> + use<> {
        let mut state = self.state.clone();
        async move {
            if state.wait_for(|(_, count)| *count >= 1).await.is_err() {
                return std::future::pending().await;
            }
            {
                let mut stderr = render::redact::stderr();
                let _ = writeln!(
                    stderr,
                    "Stopping: no new steps start; waiting up to {} s for those running (again to stop waiting).",
                    grace.as_secs()
                );
            }
            tokio::select! {
                () = tokio::time::sleep(grace) => {}
                _ = state.wait_for(|(_, count)| *count >= 2) => {}
            }
        }
    }
}
