//! Publish-subscribe by topic: subscribers name the topics they want with filters, publishers name the topic of each event.

use std::fmt;

use std::cell::Cell;
use std::rc::Rc;

use crossbeam_channel::{Receiver, Sender};

use super::subject::{Observer, Subject, Subscription};
use crate::Error;

/// An event with the topic it was published on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<E> {
    /// The concrete topic, such as `plant/line1/temperature`.
    pub topic: String,
    /// The event itself.
    pub payload: E,
}

/// A subscription filter over `/`-separated topics, in the style of MQTT.
///
/// * a plain level matches itself;
/// * `+` matches exactly one level;
/// * `#`, only as the last level, matches the parent level and everything below it.
///
/// ```
/// use gof_behavioral::observer::TopicFilter;
///
/// let filter = TopicFilter::parse("plant/+/temperature")?;
/// assert!(filter.matches("plant/line1/temperature"));
/// assert!(!filter.matches("plant/line1/pressure"));
/// assert!(TopicFilter::parse("plant/#")?.matches("plant"));
/// assert!(TopicFilter::parse("plant/#/x").is_err());
/// # Ok::<(), gof_behavioral::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicFilter {
    levels: Vec<Level>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Level {
    Exact(String),
    AnyOne,
    AnyRest,
}

/// Longest topic or filter accepted, in bytes.
pub const MAX_TOPIC_LEN: usize = 256;

impl TopicFilter {
    /// Parses a filter.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidFilter`] for an empty filter or level, a wildcard mixed into a level, `#` before the last level, or more than [`MAX_TOPIC_LEN`] bytes.
    pub fn parse(filter: &str) -> Result<Self, Error> {
        let bad = |reason| Error::InvalidFilter {
            filter: filter.to_owned(),
            reason,
        };
        if filter.len() > MAX_TOPIC_LEN {
            return Err(bad("too long"));
        }
        let parts: Vec<&str> = filter.split('/').collect();
        let mut levels = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let level = match *part {
                "" => return Err(bad("empty level")),
                "+" => Level::AnyOne,
                "#" if i + 1 == parts.len() => Level::AnyRest,
                "#" => return Err(bad("`#` must be the last level")),
                p if p.contains(['+', '#']) => return Err(bad("a wildcard must be a whole level")),
                p => Level::Exact(p.to_owned()),
            };
            levels.push(level);
        }
        Ok(Self { levels })
    }

    /// Whether `topic` (a concrete topic) matches this filter.
    pub fn matches(&self, topic: &str) -> bool {
        let mut parts = topic.split('/');
        for level in &self.levels {
            match level {
                Level::AnyRest => return true,
                Level::AnyOne => {
                    if parts.next().is_none() {
                        return false;
                    }
                }
                Level::Exact(want) => {
                    if parts.next() != Some(want.as_str()) {
                        return false;
                    }
                }
            }
        }
        parts.next().is_none()
    }
}

impl fmt::Display for TopicFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, level) in self.levels.iter().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            match level {
                Level::Exact(s) => f.write_str(s)?,
                Level::AnyOne => f.write_str("+")?,
                Level::AnyRest => f.write_str("#")?,
            }
        }
        Ok(())
    }
}

/// Checks that `topic` is concrete: non-empty levels, no wildcards, at most [`MAX_TOPIC_LEN`] bytes.
fn validate_topic(topic: &str) -> Result<(), Error> {
    let bad = |reason| Error::InvalidTopic {
        topic: topic.to_owned(),
        reason,
    };
    if topic.len() > MAX_TOPIC_LEN {
        return Err(bad("too long"));
    }
    if topic.split('/').any(str::is_empty) {
        return Err(bad("empty level"));
    }
    if topic.contains(['+', '#']) {
        return Err(bad("wildcards are for filters, not topics"));
    }
    Ok(())
}

/// A channel subscriber that forwards only the messages its filter matches.
struct FilteredChannel<E> {
    filter: TopicFilter,
    tx: Sender<Message<E>>,
    closed: Cell<bool>,
}

impl<E: Clone> Observer<Message<E>> for FilteredChannel<E> {
    fn notify(&self, message: &Message<E>) {
        if self.filter.matches(&message.topic) && self.tx.send(message.clone()).is_err() {
            self.closed.set(true);
        }
    }

    fn is_closed(&self) -> bool {
        self.closed.get()
    }
}

/// A topic-based publish-subscribe broker (the course's *Publish-Subscribe* variant of Observer).
///
/// Publishers and subscribers know only topics, never each other.
/// The broker is built on [`Subject`], so it inherits its re-entrancy rules: a subscriber may publish, subscribe and unsubscribe from inside a delivery.
///
/// ```
/// use std::cell::RefCell;
/// use std::rc::Rc;
/// use gof_behavioral::observer::Broker;
///
/// let broker = Broker::default();
/// let alarms = Rc::new(RefCell::new(Vec::new()));
/// let log = Rc::clone(&alarms);
/// let _sub = broker.subscribe("plant/+/temperature", move |topic: &str, celsius: &i32| {
///     if *celsius > 90 {
///         log.borrow_mut().push(topic.to_owned());
///     }
/// })?;
/// broker.publish("plant/line1/temperature", 95)?;
/// broker.publish("plant/line2/temperature", 40)?;
/// broker.publish("plant/line1/pressure", 120)?;
/// assert_eq!(*alarms.borrow(), ["plant/line1/temperature"]);
/// # Ok::<(), gof_behavioral::Error>(())
/// ```
pub struct Broker<E> {
    subject: Subject<Message<E>>,
}

impl<E> Default for Broker<E> {
    fn default() -> Self {
        Self {
            subject: Subject::default(),
        }
    }
}

impl<E> Clone for Broker<E> {
    fn clone(&self) -> Self {
        Self {
            subject: self.subject.clone(),
        }
    }
}

impl<E> fmt::Debug for Broker<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Broker")
            .field("subject", &self.subject)
            .finish()
    }
}

impl<E: 'static> Broker<E> {
    /// Subscribes `f` to every topic matching `filter`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidFilter`] if `filter` does not parse (see [`TopicFilter`]).
    pub fn subscribe<F>(&self, filter: &str, f: F) -> Result<Subscription, Error>
    where
        F: Fn(&str, &E) + 'static,
    {
        let filter = TopicFilter::parse(filter)?;
        Ok(self.subject.subscribe(move |m: &Message<E>| {
            if filter.matches(&m.topic) {
                f(&m.topic, &m.payload);
            }
        }))
    }

    /// Subscribes a channel to every topic matching `filter`.
    ///
    /// The subscription also ends by itself once the receiver is dropped (at the next matching message).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidFilter`] if `filter` does not parse.
    pub fn subscribe_channel(
        &self,
        filter: &str,
    ) -> Result<(Subscription, Receiver<Message<E>>), Error>
    where
        E: Clone,
    {
        let filter = TopicFilter::parse(filter)?;
        let (tx, rx) = crossbeam_channel::unbounded();
        let sub = self.subject.attach(Rc::new(FilteredChannel {
            filter,
            tx,
            closed: Cell::new(false),
        }));
        Ok((sub, rx))
    }

    /// Publishes `payload` on `topic`, delivering it to every matching subscriber.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTopic`] if `topic` has an empty level or a wildcard, or is too long; nothing is delivered then.
    pub fn publish(&self, topic: &str, payload: E) -> Result<(), Error> {
        validate_topic(topic)?;
        self.subject.publish(Message {
            topic: topic.to_owned(),
            payload,
        });
        Ok(())
    }

    /// How many subscriptions the broker holds, whatever their filters.
    pub fn subscriber_count(&self) -> usize {
        self.subject.observer_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_like_mqtt() {
        let cases = [
            ("a/b/c", "a/b/c", true),
            ("a/b/c", "a/b", false),
            ("a/b", "a/b/c", false),
            ("a/+/c", "a/x/c", true),
            ("a/+/c", "a/c", false),
            ("+", "a", true),
            ("+", "a/b", false),
            ("a/#", "a", true),
            ("a/#", "a/b/c", true),
            ("a/#", "b/a", false),
            ("#", "x/y", true),
            ("+/+", "a/b", true),
        ];
        for (filter, topic, want) in cases {
            let f = TopicFilter::parse(filter).unwrap();
            assert_eq!(f.matches(topic), want, "{filter} vs {topic}");
            assert_eq!(f.to_string(), filter);
        }
    }

    #[test]
    fn malformed_filters_and_topics_are_errors() {
        for bad in ["", "a//b", "a/#/b", "a/b+", "a/#x", "/a"] {
            assert!(
                matches!(TopicFilter::parse(bad), Err(Error::InvalidFilter { .. })),
                "{bad:?}"
            );
        }
        assert!(TopicFilter::parse(&"a/".repeat(200)).is_err());
        for bad in ["", "a//b", "a/+", "a/#", "x/"] {
            assert!(
                matches!(validate_topic(bad), Err(Error::InvalidTopic { .. })),
                "{bad:?}"
            );
        }
        assert!(validate_topic("plant/line1/temp").is_ok());
    }
}
