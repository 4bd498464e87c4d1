//! SIGHUP and admin-socket reconfiguration of a separate host process (`svc-host`).

use std::io::{BufRead, BufReader, Lines};
use std::process::{ChildStdout, Command, Stdio};

use crate::support::{addr_of, plugin_dir, request, temp_dir};

/// Reads the host's lines up to the next `ready`.
fn until_ready(lines: &mut Lines<BufReader<ChildStdout>>) -> Vec<String> {
    let mut out = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("host output");
        if line == "ready" {
            return out;
        }
        out.push(line);
    }
    panic!("the host ended before ready; it said {out:?}");
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) with a child's pid and a valid signal number has no memory effects.
    let rc = unsafe { libc::kill(pid as i32, sig) };
    assert_eq!(rc, 0, "kill failed");
}

#[test]
fn sighup_reconfigures_a_running_host() {
    let dir = temp_dir("sighup");
    let conf = dir.join("svc.conf");
    std::fs::write(
        &conf,
        "dynamic Echo Service_Object * cc_echo:_make_echo() \"-p 0\"\n\
         dynamic Stats Service_Object * cc_stats:_make_stats() \"-p 0\"\n",
    )
    .unwrap();
    let plugins = plugin_dir();
    // Spawning under the fork-window lock: see wrapper_facade::process::without_spawns.
    let forking = wrapper_facade::process::spawning();
    let mut child = Command::new(env!("CARGO_BIN_EXE_svc-host"))
        .arg("-L")
        .arg(plugins)
        .arg("-f")
        .arg(&conf)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    drop(forking);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = until_ready(&mut lines);
    assert_eq!(first[0], "configured: added Echo; added Stats");
    let echo = addr_of(&first[1]);
    let stats = addr_of(&first[2]);
    assert_eq!(request(echo, "ping").unwrap(), "ping");
    assert_eq!(request(stats, "ping").unwrap(), "requests 1");

    // Suspend Echo, add Time; Stats is untouched and keeps counting.
    std::fs::write(
        &conf,
        "dynamic Echo Service_Object * cc_echo:_make_echo() inactive \"-p 0\"\n\
         dynamic Stats Service_Object * cc_stats:_make_stats() \"-p 0\"\n\
         dynamic Time Service_Object * cc_time:_make_time() \"-p 0\"\n",
    )
    .unwrap();
    signal(child.id(), libc::SIGHUP);
    let second = until_ready(&mut lines);
    assert_eq!(second[0], "configured: suspended Echo; added Time");
    assert!(
        second[1].starts_with("  Echo Suspended echo service"),
        "{second:?}"
    );
    assert!(request(echo, "ping").is_err());
    assert_eq!(request(stats, "ping").unwrap(), "requests 2");
    assert!(
        request(addr_of(&second[3]), "t")
            .unwrap()
            .starts_with("time ")
    );

    // A broken file is refused and nothing changes.
    std::fs::write(&conf, "dynamic Echo Service_Object\n").unwrap();
    signal(child.id(), libc::SIGHUP);
    let third = until_ready(&mut lines);
    assert!(third[0].starts_with("refused: "), "{third:?}");
    assert!(
        third[0].ends_with(":2:1: unexpected end of input: expected *"),
        "{third:?}"
    );
    assert_eq!(request(stats, "ping").unwrap(), "requests 3");

    signal(child.id(), libc::SIGTERM);
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    assert_eq!(rest, ["stopped"]);
    assert!(child.wait().unwrap().success());
}

/// Sends one admin command and reads the answer up to its `ok` or `error` line.
fn admin(stream: &mut std::os::unix::net::UnixStream, command: &str) -> Vec<String> {
    use std::io::Write;
    stream.write_all(format!("{command}\n").as_bytes()).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = Vec::new();
    loop {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "admin socket closed: {out:?}"
        );
        let line = line.trim_end().to_owned();
        let done = line == "ok" || line == "error";
        out.push(line);
        if done {
            return out;
        }
    }
}

#[test]
fn the_admin_socket_takes_directives_and_reconfigure() {
    let dir = temp_dir("admin");
    let conf = dir.join("svc.conf");
    let socket = dir.join("admin.sock");
    std::fs::write(
        &conf,
        "dynamic Echo Service_Object * cc_echo:_make_echo() \"-p 0\"\n",
    )
    .unwrap();
    let plugins = plugin_dir();
    // Spawning under the fork-window lock: see wrapper_facade::process::without_spawns.
    let forking = wrapper_facade::process::spawning();
    let mut child = Command::new(env!("CARGO_BIN_EXE_svc-host"))
        .arg("-L")
        .arg(plugins)
        .arg("-f")
        .arg(&conf)
        .arg("-a")
        .arg(&socket)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    drop(forking);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = until_ready(&mut lines);
    let echo = addr_of(&first[1]);
    // The host binds the socket before it prints "ready".
    let mut stream = std::os::unix::net::UnixStream::connect(&socket).expect("admin socket");

    assert_eq!(admin(&mut stream, "suspend Echo"), ["suspended Echo", "ok"]);
    assert!(request(echo, "ping").is_err());
    let listed = admin(&mut stream, "list");
    assert!(
        listed[0].starts_with("Echo Suspended echo service"),
        "{listed:?}"
    );
    assert_eq!(admin(&mut stream, "resume Echo"), ["resumed Echo", "ok"]);
    assert_eq!(request(echo, "ping").unwrap(), "ping");
    let refused = admin(&mut stream, "suspend Nobody\"");
    assert_eq!(refused.last().unwrap(), "error");
    assert!(
        refused[0].starts_with("refused: <directive "),
        "{refused:?}"
    );

    std::fs::write(
        &conf,
        "dynamic Echo Service_Object * cc_echo:_make_echo() \"-p 0\"\n\
         dynamic Time Service_Object * cc_time:_make_time() \"-p 0\"\n",
    )
    .unwrap();
    assert_eq!(admin(&mut stream, "reconfigure"), ["added Time", "ok"]);
    let observed = until_ready(&mut lines);
    assert_eq!(observed[0], "configured: added Time");

    signal(child.id(), libc::SIGTERM);
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    assert_eq!(rest, ["stopped"]);
    assert!(child.wait().unwrap().success());
    assert!(!socket.exists(), "the socket file is removed at shutdown");
}

/// The admin socket is created 0600, refuses `dynamic` directives unless allowed, and closes
/// connections from other users unanswered (checked with `SO_PEERCRED`, with the socket made
/// 0666 on purpose so that only the credential check stands in the way).
#[test]
fn the_admin_socket_is_guarded() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let dir = temp_dir("admin-guard");
    let socket = dir.join("admin.sock");
    let forking = wrapper_facade::process::spawning();
    let mut child = Command::new(env!("CARGO_BIN_EXE_svc-host"))
        .arg("-L")
        .arg(plugin_dir())
        .arg("-S")
        .arg("dynamic Echo Service_Object * cc_echo:_make_echo() \"-p 0\"")
        .arg("-a")
        .arg(&socket)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(forking);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = until_ready(&mut lines);
    let echo = addr_of(&first[1]);
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");

    let mut stream = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    let refused = admin(
        &mut stream,
        "dynamic Time Service_Object * cc_time:_make_time() \"-p 0\"",
    );
    assert_eq!(
        refused,
        [
            "refused: `dynamic` directives are not accepted on the admin socket (AdminSocket::allow_dynamic)",
            "error"
        ]
    );
    assert_eq!(admin(&mut stream, "suspend Echo"), ["suspended Echo", "ok"]);
    assert_eq!(admin(&mut stream, "resume Echo"), ["resumed Echo", "ok"]);

    // Another user: root can run a client as nobody.
    let euid = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").unwrap().uid()
    };
    if euid != 0 {
        println!("skipped: connecting as another user needs root");
    } else if let Some(logger) = pattern_core::peer::program("logger", "bsdutils") {
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
        let err = BufReader::new(child.stderr.take().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in err.lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let forking = wrapper_facade::process::spawning();
        let status = Command::new(logger)
            .args(["--tcp", "--socket-errors=on", "-u"])
            .arg(&socket)
            .arg("suspend Echo")
            .uid(65534)
            .gid(65534)
            .status()
            .unwrap();
        drop(forking);
        assert!(status.success(), "logger connected and sent");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let warning = loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = rx.recv_timeout(left).expect("svc-host logs the refusal");
            if line.contains("admin connection refused") {
                break line;
            }
        };
        assert!(
            warning.contains("runs as uid 65534, neither this process's user (uid 0) nor root"),
            "{warning}"
        );
        assert_eq!(request(echo, "ping").unwrap(), "ping", "still active");
    }

    signal(child.id(), libc::SIGTERM);
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    assert_eq!(rest, ["stopped"]);
    assert!(child.wait().unwrap().success());
}
