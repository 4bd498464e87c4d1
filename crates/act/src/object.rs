//! Object-reference ACTs: the token owns its completion handler.

use std::fmt;

use crate::{Completion, CompletionHandler};

/// An object-reference ACT: the token *is* the completion handler, moved to the service and
/// consumed by [`complete`](Self::complete).
///
/// Nothing to look up, nothing to forge and no table to fill: completing twice does not
/// compile, because `complete` takes the token by value. If the service drops the token
/// unused, the handler still runs, once, with [`Completion::Abandoned`], so nobody waits
/// forever and nothing leaks. The price: it only works inside one process (a frame on the
/// wire cannot carry a closure) and it gives the initiator no list of what is outstanding;
/// use an index ACT ([`TokenTable`](crate::TokenTable)) for those.
///
/// ```
/// use std::sync::mpsc;
/// use act::{Completion, ObjectAct};
///
/// let (tx, rx) = mpsc::channel();
/// let tx2 = tx.clone();
/// let act = ObjectAct::new(move |outcome: Completion<u32>| tx.send(outcome).unwrap());
/// std::thread::spawn(move || act.complete(7)).join().unwrap();
/// assert_eq!(rx.recv().unwrap(), Completion::Done(7));
///
/// let lost = ObjectAct::new(move |outcome: Completion<u32>| tx2.send(outcome).unwrap());
/// drop(lost); // the service forgot it
/// assert_eq!(rx.recv().unwrap(), Completion::Abandoned);
/// ```
pub struct ObjectAct<R> {
    handler: Option<CompletionHandler<R>>,
}

impl<R> fmt::Debug for ObjectAct<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectAct")
            .field("pending", &self.handler.is_some())
            .finish()
    }
}

impl<R> ObjectAct<R> {
    /// A token owning `handler`.
    pub fn new(handler: impl FnOnce(Completion<R>) + Send + 'static) -> Self {
        ObjectAct {
            handler: Some(Box::new(handler)),
        }
    }

    /// Delivers the result: runs the handler with [`Completion::Done`], on this thread.
    pub fn complete(mut self, result: R) {
        if let Some(handler) = self.handler.take() {
            handler(Completion::Done(result));
        }
    }

    /// Ends the operation without a result and gives the handler back, unrun.
    pub fn cancel(mut self) -> CompletionHandler<R> {
        self.handler
            .take()
            .expect("an ObjectAct holds its handler until consumed")
    }
}

impl<R> Drop for ObjectAct<R> {
    fn drop(&mut self) {
        if let Some(handler) = self.handler.take() {
            handler(Completion::Abandoned);
        }
    }
}
