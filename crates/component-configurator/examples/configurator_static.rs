//! Component Configurator with static components: factories linked into the program and
//! registered by name (for targets without dynamic loading) are configured by the same
//! svc.conf directives, suspended, resumed, re-initialised with new arguments, and finalised
//! in reverse order of insertion. A broken configuration is refused whole, with its position.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use component_configurator::{Component, ComponentError, Configurator, Report};

/// A component that greets in a configured language.
#[derive(Debug, Default)]
struct Greeter {
    greeting: String,
}

impl Component for Greeter {
    fn init(&mut self, args: &[String]) -> Result<(), ComponentError> {
        self.greeting = match args {
            [flag, lang] if flag == "-l" => match lang.as_str() {
                "en" => "hello".to_owned(),
                "fr" => "bonjour".to_owned(),
                other => return Err(ComponentError::new(format!("no greeting for {other:?}"))),
            },
            _ => return Err(ComponentError::new("usage: -l LANGUAGE")),
        };
        println!("    Greeter.init({args:?}) -> says {:?}", self.greeting);
        Ok(())
    }
    fn fini(&mut self) -> Result<(), ComponentError> {
        println!("    Greeter.fini()");
        Ok(())
    }
    fn suspend(&mut self) -> Result<(), ComponentError> {
        println!("    Greeter.suspend()");
        Ok(())
    }
    fn resume(&mut self) -> Result<(), ComponentError> {
        println!("    Greeter.resume()");
        Ok(())
    }
    fn info(&self) -> String {
        format!("greeter saying {:?}", self.greeting)
    }
}

/// A component that counts ticks; the count is shared with the program.
#[derive(Debug)]
struct Ticker {
    name: &'static str,
    ticks: Arc<AtomicU64>,
}

impl Component for Ticker {
    fn init(&mut self, args: &[String]) -> Result<(), ComponentError> {
        println!("    {}.init({args:?})", self.name);
        Ok(())
    }
    fn fini(&mut self) -> Result<(), ComponentError> {
        println!(
            "    {}.fini() after {} ticks",
            self.name,
            self.ticks.load(Ordering::SeqCst)
        );
        Ok(())
    }
    fn suspend(&mut self) -> Result<(), ComponentError> {
        println!("    {}.suspend()", self.name);
        Ok(())
    }
    fn info(&self) -> String {
        format!("ticker at {}", self.ticks.load(Ordering::SeqCst))
    }
}

fn show(report: &Report) {
    for c in &report.changes {
        println!("  {c}");
    }
    for e in &report.errors {
        println!("  error: {e}");
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut cfg = Configurator::default();
    cfg.register_static("Greeter", || Box::new(Greeter::default()));
    let ticks = Arc::new(AtomicU64::new(0));
    for name in ["Fast", "Slow"] {
        let ticks = Arc::clone(&ticks);
        cfg.register_static(name, move || {
            Box::new(Ticker {
                name,
                ticks: Arc::clone(&ticks),
            })
        });
    }
    cfg.set_env(|name| (name == "LANG_CODE").then(|| "en".to_owned()));

    println!("configure: three static components, one of them inactive");
    show(&cfg.process_directive(
        "static Greeter \"-l $LANG_CODE\"\nstatic Fast\nstatic Slow inactive \"-n 1\"",
    )?);
    ticks.fetch_add(3, Ordering::SeqCst);

    println!("lookup:");
    for name in ["Greeter", "Slow", "Missing"] {
        match cfg.repository().find(name) {
            Ok(r) => println!("  {name}: {}", r.component().info()),
            Err(e) => println!("  {name}: {e}"),
        }
    }

    println!("configure: a broken directive is refused and nothing applies");
    match cfg.process_directive("resume Slow\nstatic Greeter \"-l fr") {
        Ok(_) => println!("  unexpectedly accepted"),
        Err(e) => println!("  refused: {e}"),
    }
    println!(
        "  Slow is still {:?}",
        cfg.repository().get("Slow").map(|r| r.state())
    );

    println!("configure: resume Slow, remove Fast");
    show(&cfg.process_directive("resume Slow\nremove Fast")?);

    println!("list:");
    for l in cfg.repository().list() {
        println!("  {} {:?}: {}", l.name, l.state, l.info);
    }

    println!("shutdown: fini newest first");
    for removal in cfg.close() {
        println!("  {} finalised: {}", removal.name, removal.fini.is_ok());
    }
    Ok(())
}
