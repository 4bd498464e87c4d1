//! [`Concurrency`]: the dispatcher chosen at run time, by configuration.

use std::fmt;
use std::io;
use std::str::FromStr;

use pattern_core::Dispatcher;

use crate::{ConcurrencyError, HalfSyncHalfAsync, LeaderFollowers};

/// A concurrency model for a set of handlers; [`build`](Self::build) makes the dispatcher.
///
/// Parsed from `reactor`, `leader-followers[:threads]`, `leader-followers-strict[:threads]`
/// (POSA2's protocol, [`LeaderFollowersBuilder::strict`](crate::LeaderFollowersBuilder::strict)) or
/// `half-sync-half-async[:threads[:queue]]` (defaults: the machine's parallelism, a queue of
/// 1024), so that a service picks its model from a configuration file.
///
/// ```
/// use leader_followers::Concurrency;
///
/// let model: Concurrency = "leader-followers:3".parse()?;
/// assert_eq!(model, Concurrency::LeaderFollowers { threads: 3 });
/// assert_eq!(model.to_string(), "leader-followers:3");
/// let dispatcher = model.build()?; // a Box<dyn pattern_core::Dispatcher>
/// # drop(dispatcher);
/// assert!("proactor".parse::<Concurrency>().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Concurrency {
    /// The single-threaded [`reactor::Reactor`].
    Reactor,
    /// A fixed [`LeaderFollowers`] pool of `threads` threads.
    LeaderFollowers {
        /// Pool size, the thread calling `run` included.
        threads: usize,
    },
    /// A fixed [`LeaderFollowers`] pool of `threads` threads running the strict protocol.
    StrictLeaderFollowers {
        /// Pool size, the thread calling `run` included.
        threads: usize,
    },
    /// [`HalfSyncHalfAsync`] with `threads` workers and a queue of `queue` entries.
    HalfSyncHalfAsync {
        /// Synchronous workers.
        threads: usize,
        /// Bound of the queue between the layers.
        queue: usize,
    },
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

impl Concurrency {
    /// Builds the dispatcher this model names.
    pub fn build(&self) -> io::Result<Box<dyn Dispatcher>> {
        Ok(match *self {
            Concurrency::Reactor => Box::new(reactor::Reactor::new()?),
            Concurrency::LeaderFollowers { threads } => Box::new(LeaderFollowers::new(threads)?),
            Concurrency::StrictLeaderFollowers { threads } => Box::new(
                LeaderFollowers::builder()
                    .threads(threads)
                    .strict(true)
                    .build()?,
            ),
            Concurrency::HalfSyncHalfAsync { threads, queue } => {
                Box::new(HalfSyncHalfAsync::new(threads, queue)?)
            }
        })
    }
}

fn number(s: &str) -> Result<usize, ConcurrencyError> {
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(ConcurrencyError::BadNumber(s.to_string())),
    }
}

impl FromStr for Concurrency {
    type Err = ConcurrencyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.trim().split(':');
        let name = parts.next().unwrap_or_default();
        let params: Vec<&str> = parts.collect();
        let too_many = || ConcurrencyError::TooManyParameters(s.to_string());
        match name {
            "reactor" if params.is_empty() => Ok(Concurrency::Reactor),
            "reactor" => Err(too_many()),
            "leader-followers" => match params[..] {
                [] => Ok(Concurrency::LeaderFollowers {
                    threads: default_threads(),
                }),
                [t] => Ok(Concurrency::LeaderFollowers {
                    threads: number(t)?,
                }),
                _ => Err(too_many()),
            },
            "leader-followers-strict" => match params[..] {
                [] => Ok(Concurrency::StrictLeaderFollowers {
                    threads: default_threads(),
                }),
                [t] => Ok(Concurrency::StrictLeaderFollowers {
                    threads: number(t)?,
                }),
                _ => Err(too_many()),
            },
            "half-sync-half-async" => match params[..] {
                [] => Ok(Concurrency::HalfSyncHalfAsync {
                    threads: default_threads(),
                    queue: 1024,
                }),
                [t] => Ok(Concurrency::HalfSyncHalfAsync {
                    threads: number(t)?,
                    queue: 1024,
                }),
                [t, q] => Ok(Concurrency::HalfSyncHalfAsync {
                    threads: number(t)?,
                    queue: number(q)?,
                }),
                _ => Err(too_many()),
            },
            other => Err(ConcurrencyError::UnknownModel(other.to_string())),
        }
    }
}

impl fmt::Display for Concurrency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Concurrency::Reactor => write!(f, "reactor"),
            Concurrency::LeaderFollowers { threads } => write!(f, "leader-followers:{threads}"),
            Concurrency::StrictLeaderFollowers { threads } => {
                write!(f, "leader-followers-strict:{threads}")
            }
            Concurrency::HalfSyncHalfAsync { threads, queue } => {
                write!(f, "half-sync-half-async:{threads}:{queue}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_model_and_round_trips() {
        for text in [
            "reactor",
            "leader-followers:2",
            "leader-followers-strict:2",
            "half-sync-half-async:3:64",
        ] {
            let model: Concurrency = text.parse().unwrap();
            assert_eq!(model.to_string(), text);
        }
        assert_eq!(
            "half-sync-half-async:5".parse::<Concurrency>().unwrap(),
            Concurrency::HalfSyncHalfAsync {
                threads: 5,
                queue: 1024
            }
        );
        assert!(matches!(
            "leader-followers".parse::<Concurrency>().unwrap(),
            Concurrency::LeaderFollowers { threads } if threads >= 1
        ));
    }

    #[test]
    fn refuses_bad_input() {
        assert_eq!(
            "thread-per-connection".parse::<Concurrency>(),
            Err(ConcurrencyError::UnknownModel(
                "thread-per-connection".into()
            ))
        );
        assert_eq!(
            "leader-followers:0".parse::<Concurrency>(),
            Err(ConcurrencyError::BadNumber("0".into()))
        );
        assert!(matches!(
            "reactor:2".parse::<Concurrency>(),
            Err(ConcurrencyError::TooManyParameters(_))
        ));
        assert!(matches!(
            "leader-followers:1:2".parse::<Concurrency>(),
            Err(ConcurrencyError::TooManyParameters(_))
        ));
    }
}
