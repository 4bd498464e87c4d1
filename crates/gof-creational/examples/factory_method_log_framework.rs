//! Factory Method: one log framework, two applications, each creating its own records.

use gof_creational::factory_method::{
    AccessLogApp, DynLogApplication, LogApplication, LogFramework, LogRecord, SensorLogApp,
    application_named,
};
use pattern_core::diagram::Diagram;

const INPUT: &str = "\
# mixed input: each application keeps what it can make sense of
GET /index.html 200
POST /login 401
DELETE /users/7 500
boiler=93.5/90
attic=12.0/40
garbage
";

fn show<A: LogApplication>(app: &A) {
    // The framework's template method; it calls `app.create_record` for every data line.
    let report = app.process(INPUT);
    println!(
        "framework: processing input with application `{}`",
        report.application()
    );
    for record in report.accepted() {
        println!("  {:<5} {}", record.severity(), record.render());
    }
    for rejected in report.rejected() {
        println!(
            "  line {} refused by the factory method: {}",
            rejected.line, rejected.error
        );
    }
    println!("  summary: {}", report.summary());
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo xtask demo --diagrams` draws the Factory Method page's sequence diagram from
    // the first application's run (the others repeat it with other products).
    let diagram = Diagram::from_env("factory_method_log_framework");
    println!("== static form: the record type is an associated type, known at compile time ==");
    show(&AccessLogApp);
    diagram.pause();
    show(&SensorLogApp);

    println!("== dynamic form: applications chosen by name at run time ==");
    let deployment = ["sensors", "access", "kernel"];
    let mut apps: Vec<Box<dyn DynLogApplication>> = Vec::new();
    for name in deployment {
        match application_named(name) {
            Ok(app) => {
                println!("deployment: loaded `{name}`");
                apps.push(app);
            }
            Err(err) => println!("deployment: skipped: {err}"),
        }
    }
    for app in &apps {
        // The same template method, now over `Box<dyn LogRecord>` products.
        println!("  {}", app.process(INPUT).summary());
    }
    diagram.finish()?;
    Ok(())
}
