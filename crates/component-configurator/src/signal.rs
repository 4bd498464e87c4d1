//! Reconfiguration on SIGHUP, dispatched by the reactor (no work in a signal handler).

use pattern_core::Token;
use reactor::{Context, DispatchError, Disposition, EventHandler, Interest, Reactor};

use crate::configurator::{Configurator, Report};
use crate::error::Result;

/// Called after each reconfiguration with the configurator and the outcome.
pub type ReconfigureObserver = Box<dyn FnMut(&Configurator, &Result<Report>) + Send>;

/// An event handler that owns the [`Configurator`] and calls
/// [`reconfigure`](Configurator::reconfigure) when the reactor dispatches SIGHUP to it.
///
/// The reactor reads the signal from a signal fd on its loop, so the reconfiguration runs as
/// an ordinary upcall; components serving on their own threads go on meanwhile.
pub struct ReconfigureOnHangup {
    configurator: Configurator,
    observer: ReconfigureObserver,
}

impl std::fmt::Debug for ReconfigureOnHangup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReconfigureOnHangup")
            .field("configurator", &self.configurator)
            .finish_non_exhaustive()
    }
}

impl ReconfigureOnHangup {
    /// Wraps `configurator`; `observer` hears of every reconfiguration.
    pub fn new(
        configurator: Configurator,
        observer: impl FnMut(&Configurator, &Result<Report>) + Send + 'static,
    ) -> Self {
        ReconfigureOnHangup {
            configurator,
            observer: Box::new(observer),
        }
    }

    /// Registers the handler with `reactor` and asks it to deliver SIGHUP.
    ///
    /// The reactor blocks SIGHUP in the calling thread; block it in every thread (before
    /// starting any) so the kernel cannot deliver it elsewhere with its default action.
    pub fn watch(self, reactor: &mut Reactor) -> std::result::Result<Token, DispatchError> {
        let token = reactor.register(Box::new(self), Interest::NONE)?;
        reactor.watch_signal(token, libc_sighup())?;
        Ok(token)
    }
}

fn libc_sighup() -> i32 {
    wrapper_facade::signal::Signal::HUP.as_raw()
}

impl EventHandler for ReconfigureOnHangup {
    fn handle_signal(&mut self, _ctx: &mut dyn Context, signal: i32) -> Disposition {
        if signal == libc_sighup() {
            let outcome = self.configurator.reconfigure();
            (self.observer)(&self.configurator, &outcome);
        }
        Disposition::Continue
    }

    fn handle_close(&mut self, _ctx: &mut dyn Context, _reason: reactor::CloseReason) {
        self.configurator.close();
    }
}
