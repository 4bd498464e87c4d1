//! Factory Method: a log-processing framework whose template method asks each application to create its own records.
//!
//! The framework ([`LogFramework::process`]) fixes the processing model:
//! skip blank lines and `#` comments, turn every other line into a domain object, let the
//! application filter it, count it, and report what was rejected.
//! It cannot know which domain objects an application works with, so it calls the
//! factory method [`LogApplication::create_record`] and lets the application decide.
//!
//! Two forms are offered:
//!
//! * static: [`LogApplication`] has an associated type `Record`, so the framework is
//!   monomorphised per application and the records keep their concrete type
//!   ([`AccessLogApp`] makes [`AccessRecord`]s, [`SensorLogApp`] makes [`SensorRecord`]s);
//! * dynamic: [`DynLogApplication`] returns `Box<dyn LogRecord>`, so applications can be
//!   chosen at run time by name ([`application_named`]) and kept in one collection.
//!   `Box<dyn DynLogApplication>` is itself a [`LogApplication`], so the same template
//!   method serves both forms.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::Error;

/// How serious a record is; records are filtered and counted by severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Severity {
    /// Detail for developers.
    Debug,
    /// Normal operation.
    Info,
    /// Something unusual that did not fail.
    Warn,
    /// A failure.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad` honours width and alignment, so reports can line severities up.
        f.pad(match self {
            Severity::Debug => "DEBUG",
            Severity::Info => "INFO",
            Severity::Warn => "WARN",
            Severity::Error => "ERROR",
        })
    }
}

/// The product interface: what the framework needs from any record, whatever its concrete type.
pub trait LogRecord: fmt::Debug {
    /// How serious the record is.
    fn severity(&self) -> Severity;
    /// One line of human-readable text.
    fn render(&self) -> String;
}

impl LogRecord for Box<dyn LogRecord> {
    fn severity(&self) -> Severity {
        (**self).severity()
    }
    fn render(&self) -> String {
        (**self).render()
    }
}

/// The creator of the static form: an application plugged into the framework.
///
/// An application supplies the factory method [`create_record`](Self::create_record) and may
/// override the hook [`accepts`](Self::accepts); the processing model itself is the
/// template method [`LogFramework::process`], which applications cannot override.
///
/// ```
/// use gof_creational::factory_method::{LogApplication, LogFramework, LogRecord, Severity};
/// use gof_creational::Error;
///
/// /// A domain object the framework has never heard of.
/// #[derive(Debug)]
/// struct Beep(u32);
/// impl LogRecord for Beep {
///     fn severity(&self) -> Severity { if self.0 > 2 { Severity::Warn } else { Severity::Info } }
///     fn render(&self) -> String { format!("beep x{}", self.0) }
/// }
///
/// struct BeepApp;
/// impl LogApplication for BeepApp {
///     type Record = Beep;
///     fn name(&self) -> &str { "beeps" }
///     fn create_record(&self, line: &str) -> Result<Beep, Error> {
///         line.parse().map(Beep).map_err(|_| Error::Malformed { reason: format!("not a count: {line}") })
///     }
///     // The static form's hook sees the concrete record.
///     fn accepts(&self, beep: &Beep) -> bool { beep.0 > 0 }
/// }
///
/// let report = BeepApp.process("1\n# comment\n5\nx\n0\n");
/// assert_eq!(report.accepted().len(), 2);
/// assert_eq!(report.filtered(), 1);
/// assert_eq!(report.accepted()[1].render(), "beep x5");
/// assert_eq!(report.rejected()[0].line, 4);
/// ```
pub trait LogApplication {
    /// The domain object this application creates.
    type Record: LogRecord;

    /// The application's name, used in reports.
    fn name(&self) -> &str;

    /// The factory method: build this application's domain object from one input line.
    fn create_record(&self, line: &str) -> Result<Self::Record, Error>;

    /// A hook: the least severity kept by the default [`accepts`](Self::accepts); [`Severity::Info`].
    fn min_severity(&self) -> Severity {
        Severity::Info
    }

    /// A hook: whether a record is kept; by default, when it is at least [`min_severity`](Self::min_severity).
    ///
    /// In the static form the hook sees the concrete record, so it may look at any of its fields.
    fn accepts(&self, record: &Self::Record) -> bool {
        record.severity() >= self.min_severity()
    }
}

/// One input line the factory method refused.
#[derive(Debug)]
pub struct Rejected {
    /// The 1-based line number in the input.
    pub line: usize,
    /// Why it was refused.
    pub error: Error,
}

/// What the template method produced: accepted records, filtered counts, rejects.
#[derive(Debug)]
pub struct Report<R> {
    application: String,
    accepted: Vec<R>,
    filtered: usize,
    rejected: Vec<Rejected>,
    by_severity: BTreeMap<Severity, usize>,
}

impl<R> Report<R> {
    /// The name of the application that produced the records.
    pub fn application(&self) -> &str {
        &self.application
    }
    /// The records that were created and accepted, in input order.
    pub fn accepted(&self) -> &[R] {
        &self.accepted
    }
    /// Takes the accepted records out of the report.
    pub fn into_accepted(self) -> Vec<R> {
        self.accepted
    }
    /// How many records were created but refused by the application's hook.
    pub fn filtered(&self) -> usize {
        self.filtered
    }
    /// The lines the factory method could not turn into records.
    pub fn rejected(&self) -> &[Rejected] {
        &self.rejected
    }
    /// How many accepted records there are of a severity.
    pub fn count(&self, severity: Severity) -> usize {
        self.by_severity.get(&severity).copied().unwrap_or(0)
    }
    /// A one-line summary, the same for every application.
    pub fn summary(&self) -> String {
        let counts: Vec<String> = self
            .by_severity
            .iter()
            .map(|(s, n)| format!("{s}={n}"))
            .collect();
        format!(
            "{}: {} accepted [{}], {} filtered, {} rejected",
            self.application,
            self.accepted.len(),
            counts.join(" "),
            self.filtered,
            self.rejected.len()
        )
    }
}

/// The framework's template method, fixed for every [`LogApplication`] by a blanket impl.
///
/// Because the only impl is the blanket one, an application can change the steps it is
/// asked for (the factory method and the hook) but not the order of the steps.
pub trait LogFramework: LogApplication {
    /// Runs the standard processing model over `input`, one record per non-blank,
    /// non-comment line, creating each record through the factory method.
    ///
    /// ```
    /// use gof_creational::factory_method::{AccessLogApp, LogFramework, Severity};
    ///
    /// let report = AccessLogApp.process("GET /index.html 200\nPOST /login 500\n");
    /// assert_eq!(report.count(Severity::Error), 1);
    /// assert_eq!(report.summary(), "access: 2 accepted [INFO=1 ERROR=1], 0 filtered, 0 rejected");
    /// ```
    fn process(&self, input: &str) -> Report<Self::Record>;
}

impl<A: LogApplication + ?Sized> LogFramework for A {
    fn process(&self, input: &str) -> Report<A::Record> {
        const FRAMEWORK: &str = "LogFramework::process (template method)";
        let app = format!("{} (concrete creator)", self.name());
        seq!("Client" => FRAMEWORK, "process(input)");
        let mut report = Report {
            application: self.name().to_owned(),
            accepted: Vec::new(),
            filtered: 0,
            rejected: Vec::new(),
            by_severity: BTreeMap::new(),
        };
        for (index, raw) in input.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            // The one step the framework cannot do itself: it does not know the record type.
            seq!(FRAMEWORK => app, "create_record({line:?})");
            let created = self.create_record(line);
            match &created {
                Ok(record) => seq!(reply app => FRAMEWORK, "Ok({})", record.render()),
                Err(e) => seq!(fail app => FRAMEWORK, "Err({e})"),
            }
            match created {
                Ok(record)
                    if {
                        seq!(FRAMEWORK => app, "accepts(record) (hook)");
                        self.accepts(&record)
                    } =>
                {
                    *report.by_severity.entry(record.severity()).or_insert(0) += 1;
                    report.accepted.push(record);
                }
                Ok(_) => {
                    seq!(note FRAMEWORK, "filtered out");
                    report.filtered += 1
                }
                Err(error) => report.rejected.push(Rejected {
                    line: index + 1,
                    error,
                }),
            }
        }
        seq!(reply FRAMEWORK => "Client", "Report: {}", report.summary());
        report
    }
}

fn malformed(reason: impl Into<String>) -> Error {
    Error::Malformed {
        reason: reason.into(),
    }
}

/// A request seen by a web server: the domain object of [`AccessLogApp`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRecord {
    /// The HTTP method.
    pub method: String,
    /// The requested path.
    pub path: String,
    /// The HTTP status code.
    pub status: u16,
}

impl LogRecord for AccessRecord {
    fn severity(&self) -> Severity {
        match self.status {
            500.. => Severity::Error,
            400..=499 => Severity::Warn,
            _ => Severity::Info,
        }
    }
    fn render(&self) -> String {
        format!("{} {} -> {}", self.method, self.path, self.status)
    }
}

impl FromStr for AccessRecord {
    type Err = Error;
    fn from_str(line: &str) -> Result<Self, Error> {
        let mut parts = line.split_whitespace();
        let (Some(method), Some(path), Some(status), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed(format!(
                "expected `METHOD PATH STATUS`, got `{line}`"
            )));
        };
        let status = status
            .parse::<u16>()
            .ok()
            .filter(|s| (100..600).contains(s))
            .ok_or_else(|| malformed(format!("bad status `{status}`")))?;
        Ok(AccessRecord {
            method: method.to_owned(),
            path: path.to_owned(),
            status,
        })
    }
}

/// A concrete creator: an application that reads web-server access logs.
#[derive(Debug, Clone, Copy, Default)]
pub struct AccessLogApp;

impl LogApplication for AccessLogApp {
    type Record = AccessRecord;
    fn name(&self) -> &str {
        "access"
    }
    fn create_record(&self, line: &str) -> Result<AccessRecord, Error> {
        line.parse()
    }
}

/// A sensor sample checked against its limit: the domain object of [`SensorLogApp`].
#[derive(Debug, Clone, PartialEq)]
pub struct SensorRecord {
    /// The sensor's name.
    pub sensor: String,
    /// The measured value.
    pub value: f64,
    /// The limit above which the sample is a warning.
    pub limit: f64,
}

impl LogRecord for SensorRecord {
    fn severity(&self) -> Severity {
        if self.value > self.limit {
            Severity::Warn
        } else {
            Severity::Debug
        }
    }
    fn render(&self) -> String {
        format!("{} = {} (limit {})", self.sensor, self.value, self.limit)
    }
}

/// A concrete creator: an application that reads `sensor=value/limit` samples and keeps
/// only those over their limit (it overrides the [`LogApplication::min_severity`] hook).
#[derive(Debug, Clone, Copy, Default)]
pub struct SensorLogApp;

impl LogApplication for SensorLogApp {
    type Record = SensorRecord;
    fn name(&self) -> &str {
        "sensors"
    }
    fn create_record(&self, line: &str) -> Result<SensorRecord, Error> {
        let (sensor, rest) = line
            .split_once('=')
            .ok_or_else(|| malformed(format!("no `=` in `{line}`")))?;
        let (value, limit) = rest
            .split_once('/')
            .ok_or_else(|| malformed(format!("no `/limit` in `{line}`")))?;
        let number = |text: &str| {
            text.trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| malformed(format!("`{text}` is not a number")))
        };
        Ok(SensorRecord {
            sensor: sensor.trim().to_owned(),
            value: number(value)?,
            limit: number(limit)?,
        })
    }
    fn min_severity(&self) -> Severity {
        Severity::Warn
    }
}

/// The creator of the dynamic form: object safe, so applications can be boxed and chosen at run time.
///
/// ```
/// use gof_creational::factory_method::{application_named, LogFramework};
///
/// for name in ["access", "sensors"] {
///     let app = application_named(name)?;
///     let report = app.process("GET / 200\nboiler=93.5/90\n");
///     println!("{}", report.summary());
/// }
/// # Ok::<(), gof_creational::Error>(())
/// ```
pub trait DynLogApplication: fmt::Debug {
    /// The application's name, used in reports.
    fn name(&self) -> &str;
    /// The factory method, returning a boxed product.
    fn create_record(&self, line: &str) -> Result<Box<dyn LogRecord>, Error>;
    /// A hook: the least severity kept by the default [`accepts`](Self::accepts); [`Severity::Info`].
    fn min_severity(&self) -> Severity {
        Severity::Info
    }
    /// A hook: whether a record is kept; by default, when it is at least [`min_severity`](Self::min_severity).
    fn accepts(&self, record: &dyn LogRecord) -> bool {
        record.severity() >= self.min_severity()
    }
}

impl LogApplication for Box<dyn DynLogApplication> {
    type Record = Box<dyn LogRecord>;
    fn name(&self) -> &str {
        (**self).name()
    }
    fn create_record(&self, line: &str) -> Result<Box<dyn LogRecord>, Error> {
        (**self).create_record(line)
    }
    fn min_severity(&self) -> Severity {
        (**self).min_severity()
    }
    fn accepts(&self, record: &Box<dyn LogRecord>) -> bool {
        (**self).accepts(&**record)
    }
}

/// Turns a static application into a dynamic one by boxing the records it creates.
///
/// The wrapped application's [`min_severity`](LogApplication::min_severity) hook carries over;
/// an overridden [`accepts`](LogApplication::accepts) that looks at concrete record fields
/// cannot, because the boxed record only offers the [`LogRecord`] interface.
#[derive(Debug, Clone, Copy, Default)]
pub struct Boxed<A>(pub A);

impl<A> DynLogApplication for Boxed<A>
where
    A: LogApplication + fmt::Debug,
    A::Record: 'static,
{
    fn name(&self) -> &str {
        self.0.name()
    }
    fn create_record(&self, line: &str) -> Result<Box<dyn LogRecord>, Error> {
        Ok(Box::new(self.0.create_record(line)?))
    }
    fn min_severity(&self) -> Severity {
        self.0.min_severity()
    }
}

/// A parameterised factory method: the application registered under `name`.
///
/// ```
/// use gof_creational::factory_method::application_named;
///
/// assert!(application_named("access").is_ok());
/// assert!(application_named("kernel").is_err());
/// ```
pub fn application_named(name: &str) -> Result<Box<dyn DynLogApplication>, Error> {
    match name {
        "access" => Ok(Box::new(Boxed(AccessLogApp))),
        "sensors" => Ok(Box::new(Boxed(SensorLogApp))),
        _ => Err(Error::UnknownApplication {
            name: name.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_record_parses_and_rejects() {
        let r: AccessRecord = "GET /a 404".parse().unwrap();
        assert_eq!(r.severity(), Severity::Warn);
        assert!("GET /a".parse::<AccessRecord>().is_err());
        assert!("GET /a 200 extra".parse::<AccessRecord>().is_err());
        assert!("GET /a 999".parse::<AccessRecord>().is_err());
    }

    #[test]
    fn sensor_hook_filters_quiet_samples() {
        let report = SensorLogApp.process("a=1/2\nb=3/2\nc=nan/2\nd=1\n");
        assert_eq!(report.accepted().len(), 1);
        assert_eq!(report.accepted()[0].sensor, "b");
        assert_eq!(report.filtered(), 1);
        let lines: Vec<usize> = report.rejected().iter().map(|r| r.line).collect();
        assert_eq!(lines, [3, 4]);
    }
}
