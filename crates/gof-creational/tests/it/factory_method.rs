//! Factory Method: the template method drives both the static and the dynamic form.

use gof_creational::Error;
use gof_creational::factory_method::{
    AccessLogApp, AccessRecord, Boxed, DynLogApplication, LogApplication, LogFramework, LogRecord,
    SensorLogApp, Severity, application_named,
};

const ACCESS_LOG: &str = "\
# web server, morning
GET /index.html 200

POST /login 401
GET /favicon.ico
DELETE /users/7 500
GET /health 204
";

#[test]
fn the_template_method_calls_the_factory_method_for_each_data_line() {
    let report = AccessLogApp.process(ACCESS_LOG);
    let records: Vec<&AccessRecord> = report.accepted().iter().collect();
    assert_eq!(records.len(), 4);
    assert_eq!(
        records[1],
        &AccessRecord {
            method: "POST".into(),
            path: "/login".into(),
            status: 401
        }
    );
    assert_eq!(report.count(Severity::Info), 2);
    assert_eq!(report.count(Severity::Warn), 1);
    assert_eq!(report.count(Severity::Error), 1);
    // Comment and blank lines are skipped by the framework; line 5 is refused by the factory.
    assert_eq!(report.rejected().len(), 1);
    assert_eq!(report.rejected()[0].line, 5);
    assert!(matches!(
        report.rejected()[0].error,
        Error::Malformed { .. }
    ));
}

#[test]
fn each_application_creates_its_own_domain_objects() {
    let sensors = SensorLogApp.process("boiler = 93.5 / 90\nattic=12/40\nbroken\n");
    let accepted = sensors.into_accepted();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].sensor, "boiler");
    assert_eq!(accepted[0].render(), "boiler = 93.5 (limit 90)");
}

#[test]
fn the_static_and_dynamic_forms_report_the_same() {
    let input = format!("{ACCESS_LOG}\nboiler=95/90\n");
    for (name, expected) in [
        ("access", AccessLogApp.process(&input).summary()),
        ("sensors", SensorLogApp.process(&input).summary()),
    ] {
        let dynamic = application_named(name).unwrap();
        assert_eq!(dynamic.process(&input).summary(), expected, "{name}");
    }
}

#[test]
fn dynamic_applications_live_in_one_collection() {
    let apps: Vec<Box<dyn DynLogApplication>> = vec![
        application_named("sensors").unwrap(),
        Box::new(Boxed(AccessLogApp)),
    ];
    let rendered: Vec<Vec<String>> = apps
        .iter()
        .map(|app| {
            app.process("GET / 500\nfan=3000/2500\n")
                .accepted()
                .iter()
                .map(LogRecord::render)
                .collect()
        })
        .collect();
    assert_eq!(
        rendered,
        [
            vec!["fan = 3000 (limit 2500)".to_string()],
            vec!["GET / -> 500".to_string()]
        ]
    );
}

#[test]
fn unknown_applications_are_an_error() {
    let err = application_named("kernel").unwrap_err();
    assert!(matches!(&err, Error::UnknownApplication { name } if name == "kernel"));
}

#[test]
fn boxed_keeps_the_min_severity_hook() {
    assert_eq!(
        DynLogApplication::min_severity(&Boxed(SensorLogApp)),
        Severity::Warn
    );
    assert_eq!(
        DynLogApplication::min_severity(&Boxed(AccessLogApp)),
        Severity::Info
    );
    assert_eq!(LogApplication::min_severity(&SensorLogApp), Severity::Warn);
}
