//! The service manager's readiness protocol (`sd_notify`): logd tells systemd when it is ready,
//! reloading and stopping, so a `Type=notify` unit orders its dependants and reloads correctly.
//!
//! The protocol is one datagram per state change, `KEY=VALUE` lines, sent to the Unix datagram
//! socket named in `$NOTIFY_SOCKET` (a path, or an abstract name written with a leading `@`).
//! Without the variable the notifier does nothing, so logd runs the same outside systemd.
//! std's `UnixDatagram` does the whole job safely, abstract names included, so this goes through
//! std rather than a new wrapper-facade type.
//!
//! ```
//! use logging_service::notify::Notifier;
//! use std::os::unix::net::UnixDatagram;
//!
//! let dir = std::env::temp_dir().join(format!("notify-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let path = dir.join("notify.sock");
//! let manager = UnixDatagram::bind(&path)?; // what systemd holds
//! let n = Notifier::to(path.to_str().unwrap())?;
//! n.ready("listening on 127.0.0.1:20514")?;
//! let mut buf = [0u8; 256];
//! let len = manager.recv(&mut buf)?;
//! assert_eq!(&buf[..len], b"READY=1\nSTATUS=listening on 127.0.0.1:20514\n");
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// The environment variable systemd sets for `Type=notify` services.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Sends state changes to the service manager, or nothing when there is none.
#[derive(Debug)]
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
}

impl Notifier {
    /// A notifier for `$NOTIFY_SOCKET`, or a silent one when it is unset or empty.
    pub fn from_env() -> io::Result<Notifier> {
        match std::env::var(NOTIFY_SOCKET) {
            Ok(s) if !s.is_empty() => Notifier::to(&s),
            _ => Ok(Notifier { target: None }),
        }
    }

    /// A notifier for the socket `name`: a path, or `@name` for an abstract socket.
    pub fn to(name: &str) -> io::Result<Notifier> {
        let addr = match name.strip_prefix('@') {
            Some(abstract_name) => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(abstract_name.as_bytes())?
            }
            None if name.starts_with('/') => SocketAddr::from_pathname(name)?,
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{NOTIFY_SOCKET}={name:?} is neither an absolute path nor @abstract"),
                ));
            }
        };
        let socket = UnixDatagram::unbound()?;
        // A manager that stops reading must not stall logd's main thread.
        socket.set_write_timeout(Some(Duration::from_secs(1)))?;
        Ok(Notifier {
            target: Some((socket, addr)),
        })
    }

    /// Whether a service manager is listening.
    pub fn is_active(&self) -> bool {
        self.target.is_some()
    }

    /// Sends `KEY=VALUE` lines as one datagram.
    pub fn send(&self, lines: &[(&str, &str)]) -> io::Result<()> {
        let Some((socket, addr)) = &self.target else {
            return Ok(());
        };
        let mut msg = String::new();
        for (k, v) in lines {
            // A newline inside a value would start a forged line.
            let v = v.replace('\n', " ");
            msg.push_str(&format!("{k}={v}\n"));
        }
        socket.send_to_addr(msg.as_bytes(), addr).map(drop)
    }

    /// Startup finished: listeners are open and records are accepted.
    pub fn ready(&self, status: &str) -> io::Result<()> {
        self.send(&[("READY", "1"), ("STATUS", status)])
    }

    /// A reload began (SIGHUP). systemd wants the monotonic time with it, to match the reload
    /// it asked for.
    pub fn reloading(&self) -> io::Result<()> {
        let usec = monotonic_usec().to_string();
        self.send(&[("RELOADING", "1"), ("MONOTONIC_USEC", &usec)])
    }

    /// The service is stopping.
    pub fn stopping(&self, status: &str) -> io::Result<()> {
        self.send(&[("STOPPING", "1"), ("STATUS", status)])
    }
}

/// CLOCK_MONOTONIC in microseconds, the clock systemd reads for `MONOTONIC_USEC`.
fn monotonic_usec() -> u64 {
    wrapper_facade::clock::monotonic().map_or(0, |d| d.as_micros() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recv(s: &UnixDatagram) -> String {
        let mut buf = [0u8; 512];
        let n = s.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn abstract_sockets_and_every_state_change() {
        let name = format!("logd-notify-test-{}", std::process::id());
        use std::os::linux::net::SocketAddrExt;
        let manager =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
                .unwrap();
        let n = Notifier::to(&format!("@{name}")).unwrap();
        assert!(n.is_active());
        n.ready("up").unwrap();
        assert_eq!(recv(&manager), "READY=1\nSTATUS=up\n");
        n.reloading().unwrap();
        let r = recv(&manager);
        assert!(r.starts_with("RELOADING=1\nMONOTONIC_USEC="), "{r}");
        let usec: u64 = r.lines().nth(1).unwrap()["MONOTONIC_USEC=".len()..]
            .parse()
            .unwrap();
        assert!(usec > 0);
        n.stopping("bye\nREADY=1").unwrap();
        assert_eq!(
            recv(&manager),
            "STOPPING=1\nSTATUS=bye READY=1\n",
            "no forged line"
        );
    }

    #[test]
    fn without_a_manager_nothing_is_sent_and_a_bad_name_is_an_error() {
        let n = Notifier { target: None };
        assert!(!n.is_active());
        n.ready("x").unwrap();
        assert!(Notifier::to("relative/path").is_err());
    }
}
