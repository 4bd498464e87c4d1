//! Singleton: one lazily created, thread-safe instance behind a global access point, and how to keep it out of your tests.
//!
//! * [`Singleton`] is the reusable building block: a `static` holding an [`OnceLock`] and the
//!   function that creates the instance on first access. It counts how often that function
//!   ran, which lets tests prove that racing threads created exactly one instance.
//! * [`Config::global`] is the course's "read-only global variable": the application's
//!   settings, created on first access from built-in defaults, or installed once at start-up
//!   with [`Config::install`].
//! * [`build_info`] is the shortest form std offers, a `static` [`LazyLock`].
//! * [`Sampler`] is code that uses the configuration.
//!   It receives a `&Config` instead of reaching for the global, so tests inject their own
//!   instance ([`Sampler::from_global`] is the one place that touches the singleton).
//!
//! There is no `static mut` and no `unsafe`: [`OnceLock`] does the synchronisation.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{LazyLock, OnceLock};

use posa_seq::THREAD;

use crate::{Error, short};

/// A lazily created single instance, meant to live in a `static`.
///
/// The first call to [`instance`](Self::instance) runs the creation function; callers that
/// race with it block until it has finished and then all see the same instance.
/// If the creation function panics, the cell stays empty and the next access tries again.
///
/// ```
/// use gof_creational::singleton::Singleton;
///
/// static SEQUENCE: Singleton<Vec<u32>> = Singleton::new(|| vec![1, 2, 3]);
///
/// assert!(SEQUENCE.get().is_none());          // nothing created yet
/// assert_eq!(SEQUENCE.instance(), &[1, 2, 3]); // created here
/// assert!(std::ptr::eq(SEQUENCE.instance(), SEQUENCE.instance()));
/// assert_eq!(SEQUENCE.creations(), 1);
/// ```
pub struct Singleton<T> {
    cell: OnceLock<T>,
    create: fn() -> T,
    creations: AtomicUsize,
}

impl<T> Singleton<T> {
    /// A singleton that will be created by `create` on first access.
    pub const fn new(create: fn() -> T) -> Singleton<T> {
        Singleton {
            cell: OnceLock::new(),
            create,
            creations: AtomicUsize::new(0),
        }
    }

    /// The instance, created now if this is the first access.
    pub fn instance(&self) -> &T {
        seq!(THREAD => participant::<T>(), "instance()");
        let instance = self.cell.get_or_init(|| {
            seq!(participant::<T>() => "creation function", "run once");
            self.creations.fetch_add(1, Ordering::Relaxed);
            let value = (self.create)();
            seq!(reply "creation function" => participant::<T>(), "the instance, stored in the cell");
            value
        });
        seq!(reply participant::<T>() => THREAD, "&'static {} (the one instance)", short::<T>());
        instance
    }

    /// The instance if it has been created, without creating it.
    pub fn get(&self) -> Option<&T> {
        self.cell.get()
    }

    /// Installs `value` as the instance unless one exists; hands `value` back if one does.
    ///
    /// ```
    /// use gof_creational::singleton::Singleton;
    ///
    /// static PORT: Singleton<u16> = Singleton::new(|| 8080);
    /// assert_eq!(PORT.install(9000), Ok(&9000));
    /// assert_eq!(PORT.install(7000), Err(7000));
    /// assert_eq!(*PORT.instance(), 9000);
    /// assert_eq!(PORT.creations(), 0); // the creation function never ran
    /// ```
    pub fn install(&self, value: T) -> Result<&T, T> {
        seq!(THREAD => participant::<T>(), "install(value)");
        let mut value = Some(value);
        let installed = self
            .cell
            .get_or_init(|| value.take().expect("taken only here"));
        match value {
            None => {
                seq!(reply participant::<T>() => THREAD, "Ok(&'static {})", short::<T>());
                Ok(installed)
            }
            Some(refused) => {
                seq!(fail participant::<T>() => THREAD, "Err(value handed back: an instance exists)");
                Err(refused)
            }
        }
    }

    /// How many times the creation function has run to completion or is running (at most 1,
    /// unless it panicked).
    pub fn creations(&self) -> usize {
        self.creations.load(Ordering::Relaxed)
    }
}

/// The singleton's name in the sequence diagrams drawn from runs.
fn participant<T>() -> String {
    format!("Singleton<{}> (OnceLock)", short::<T>())
}

impl<T: fmt::Debug> fmt::Debug for Singleton<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Singleton")
            .field("instance", &self.cell.get())
            .field("creations", &self.creations())
            .finish()
    }
}

/// The application's settings: the instance [`Config::global`] hands out.
///
/// The type is an ordinary value (tests build their own with [`Config::parse`]); what is
/// single is the instance behind [`Config::global`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    device_name: String,
    sample_period_ms: u32,
    samples_per_report: u32,
}

/// The settings [`Config::global`] starts from when nothing was installed.
pub const DEFAULT_CONFIG: &str = "\
# built-in defaults
device_name = gateway-01
sample_period_ms = 250
samples_per_report = 4
";

static GLOBAL_CONFIG: Singleton<Config> = Singleton::new(Config::load_defaults);

impl Config {
    /// Parses `key = value` lines; `#` starts a comment; every key is required.
    ///
    /// ```
    /// use gof_creational::singleton::Config;
    ///
    /// let config = Config::parse("device_name = bench\nsample_period_ms = 5\nsamples_per_report = 2")?;
    /// assert_eq!(config.sample_period_ms(), 5);
    /// assert!(Config::parse("device_name = bench").is_err());
    /// # Ok::<(), gof_creational::Error>(())
    /// ```
    pub fn parse(text: &str) -> Result<Config, Error> {
        let malformed = |reason: String| Error::Malformed { reason };
        let (mut name, mut period, mut per_report) = (None, None, None);
        for raw in text.lines() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .map(|(k, v)| (k.trim(), v.trim()))
                .ok_or_else(|| malformed(format!("expected `key = value`, got `{line}`")))?;
            let number = || {
                value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| malformed(format!("`{key}` must be a positive integer")))
            };
            match key {
                "device_name" => name = Some(value.to_owned()),
                "sample_period_ms" => period = Some(number()?),
                "samples_per_report" => per_report = Some(number()?),
                _ => return Err(malformed(format!("unknown key `{key}`"))),
            }
        }
        let missing = |key: &str| malformed(format!("missing `{key}`"));
        Ok(Config {
            device_name: name.ok_or_else(|| missing("device_name"))?,
            sample_period_ms: period.ok_or_else(|| missing("sample_period_ms"))?,
            samples_per_report: per_report.ok_or_else(|| missing("samples_per_report"))?,
        })
    }

    fn load_defaults() -> Config {
        Config::parse(DEFAULT_CONFIG).expect("the built-in defaults parse")
    }

    /// The global access point: the process's one configuration, created from
    /// [`DEFAULT_CONFIG`] on first access unless [`install`](Self::install) came first.
    ///
    /// ```
    /// use gof_creational::singleton::Config;
    ///
    /// let a = Config::global();
    /// let b = Config::global();
    /// assert!(std::ptr::eq(a, b));
    /// ```
    pub fn global() -> &'static Config {
        GLOBAL_CONFIG.instance()
    }

    /// Makes `self` the global configuration, typically first thing in `main`.
    /// Fails, handing the value back, if the global exists already: a singleton cannot be replaced.
    pub fn install(self) -> Result<&'static Config, Config> {
        GLOBAL_CONFIG.install(self)
    }

    /// How many times the global configuration was created from the defaults (0 or 1).
    pub fn global_creations() -> usize {
        GLOBAL_CONFIG.creations()
    }

    /// The device's name.
    pub fn device_name(&self) -> &str {
        &self.device_name
    }

    /// Milliseconds between samples.
    pub fn sample_period_ms(&self) -> u32 {
        self.sample_period_ms
    }

    /// Samples averaged into one report.
    pub fn samples_per_report(&self) -> u32 {
        self.samples_per_report
    }
}

/// Facts about this build, computed once on first access (the `LazyLock` form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    /// The crate's name.
    pub name: &'static str,
    /// The crate's version.
    pub version: &'static str,
    /// `"debug"` or `"release"`.
    pub profile: &'static str,
}

static BUILD_INFO: LazyLock<BuildInfo> = LazyLock::new(|| BuildInfo {
    name: env!("CARGO_PKG_NAME"),
    version: env!("CARGO_PKG_VERSION"),
    profile: if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    },
});

/// The build's facts; the same `'static` instance on every call.
///
/// ```
/// assert_eq!(gof_creational::singleton::build_info().name, "gof-creational");
/// ```
pub fn build_info() -> &'static BuildInfo {
    &BUILD_INFO
}

/// Code that depends on the configuration: it turns raw samples into averaged reports.
///
/// It borrows a [`Config`] rather than calling [`Config::global`] inside its methods, so a
/// test can hand it any configuration while production code hands it the global one.
///
/// ```
/// use gof_creational::singleton::{Config, Sampler};
///
/// // A test injects its own instance: no global state is read or changed.
/// let config = Config::parse("device_name = t\nsample_period_ms = 10\nsamples_per_report = 2")?;
/// let sampler = Sampler::new(&config);
/// assert_eq!(sampler.reports(&[1.0, 3.0, 10.0, 20.0, 7.0]), ["t@20ms: 2.00", "t@40ms: 15.00"]);
/// # Ok::<(), gof_creational::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Sampler<'c> {
    config: &'c Config,
}

impl<'c> Sampler<'c> {
    /// A sampler working with `config`.
    pub fn new(config: &'c Config) -> Sampler<'c> {
        Sampler { config }
    }

    /// The configuration it works with.
    pub fn config(&self) -> &'c Config {
        self.config
    }

    /// A sampler working with the global configuration: the composition root's choice.
    pub fn from_global() -> Sampler<'static> {
        Sampler::new(Config::global())
    }

    /// One line per complete group of `samples_per_report` samples: the device, the time at
    /// the group's last sample and the group's mean; an incomplete last group is left out.
    pub fn reports(&self, samples: &[f64]) -> Vec<String> {
        let group = self.config.samples_per_report as usize;
        let period = u64::from(self.config.sample_period_ms);
        samples
            .chunks_exact(group)
            .enumerate()
            .map(|(i, chunk)| {
                let mean = chunk.iter().sum::<f64>() / chunk.len() as f64;
                let at_ms = (i as u64 + 1) * group as u64 * period;
                format!("{}@{at_ms}ms: {mean:.2}", self.config.device_name)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_parses() {
        let config = Config::load_defaults();
        assert_eq!(config.device_name(), "gateway-01");
        assert_eq!(config.samples_per_report(), 4);
    }

    #[test]
    fn config_rejects_bad_input() {
        for bad in [
            "device_name = a\nsample_period_ms = 0\nsamples_per_report = 1",
            "device_name = a\nsample_period_ms = x\nsamples_per_report = 1",
            "device_name = a\nsample_period_ms = 1\nsamples_per_report = 1\ncolour = red",
            "just words",
        ] {
            assert!(
                matches!(Config::parse(bad), Err(Error::Malformed { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn creation_panic_leaves_the_cell_empty_and_the_next_access_retries() {
        use std::sync::atomic::AtomicBool;
        static FAIL_ONCE: AtomicBool = AtomicBool::new(true);
        static FLAKY: Singleton<u8> = Singleton::new(|| {
            assert!(
                !FAIL_ONCE.swap(false, Ordering::SeqCst),
                "first creation fails"
            );
            7
        });
        let first = std::panic::catch_unwind(|| *FLAKY.instance());
        assert!(first.is_err());
        assert!(FLAKY.get().is_none());
        assert_eq!(*FLAKY.instance(), 7);
        assert_eq!(FLAKY.creations(), 2);
    }
}
