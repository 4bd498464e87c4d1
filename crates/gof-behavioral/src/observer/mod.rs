//! Observer: subjects notify the observers that depend on them, with publish-subscribe by topic and event compression.
//!
//! | flavour | type | observers | threads |
//! |---|---|---|---|
//! | original GoF (the course's drawing) | [`StateSubject`] | push ([`Change`]) or pull (the subject), closures or trait objects | one |
//! | event channel | [`Subject`] | closures, [`Observer`] trait objects, channels | one |
//! | thread-safe | [`SyncSubject`] | [`Mailbox`] (pull) and [`Worker`] (own thread), bounded queues | any |
//! | publish-subscribe | [`Broker`] | closures and channels, by [`TopicFilter`] | one |
//! | compressed | [`Compressor`] | as [`Subject`], after a [`CompressionPolicy`] | one |

mod compress;
mod state;
mod subject;
mod sync;
mod topic;

pub use compress::{
    CoalesceByKey, CompressionPolicy, CompressionStats, Compressor, Debounce, LatestWins, Offer,
};
pub use state::{Change, StateSubject};
pub use subject::{Observer, Subject, Subscription, SubscriptionId};
pub use sync::{Mailbox, OverflowPolicy, PublishReport, SyncSubject, SyncSubscription, Worker};
pub use topic::{Broker, MAX_TOPIC_LEN, Message, TopicFilter};
