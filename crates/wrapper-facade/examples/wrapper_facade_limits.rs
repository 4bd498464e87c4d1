//! Two of the Wrapper Facade's liabilities, shown rather than asserted, on a sensor gateway's
//! sockets and signals.
//!
//! - Loss of functionality: the facade wraps what the workspace needs. A gateway that wants
//!   its alarm datagrams marked for low delay (IP_TOS) finds no setter; the descriptor is still
//!   reachable (`AsRawFd`), and the option is set with one raw call, outside the facade's
//!   guarantees.
//! - Programming language limitations: a signal mask belongs to a thread, which no Rust type
//!   expresses. `SignalSet::block_current_thread` blocks SIGUSR1 in the calling thread and the
//!   threads it spawns afterwards; a thread spawned before keeps it unblocked, and the kernel
//!   may deliver the signal there instead of to the signal fd. The example reads each thread's
//!   mask from /proc to show it.

use std::os::fd::AsRawFd;
use std::sync::mpsc;

use wrapper_facade::InetAddr;
use wrapper_facade::SockDgram;
use wrapper_facade::signal::{Signal, SignalSet};

/// Whether SIGUSR1 is in the blocked mask of the thread `tid` of this process.
fn usr1_blocked(tid: i64) -> bool {
    let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status"))
        .expect("the thread's status");
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("SigBlk:"))
        .map(|m| u64::from_str_radix(m.trim(), 16).expect("a hex mask"))
        .expect("a SigBlk line");
    mask & (1 << (Signal::USR1.as_raw() - 1)) != 0
}

fn this_tid() -> i64 {
    // SAFETY: gettid has no preconditions and cannot fail.
    i64::from(unsafe { libc::gettid() })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("== loss of functionality: a socket option the facade does not wrap ==");
    let sock = SockDgram::bind(&InetAddr::loopback_v4(0))?;
    println!("facade: SockDgram has no IP_TOS setter; the descriptor is reachable through AsRawFd");
    let low_delay: libc::c_int = 0x10;
    // SAFETY: `low_delay` is a valid c_int for the length passed; the descriptor is the open
    // socket `sock` owns.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_TOS,
            (&low_delay as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    let mut got: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `got` and `len` are valid for writes of a c_int; the descriptor is open.
    let rc2 = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_TOS,
            (&mut got as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    assert_eq!((rc, rc2), (0, 0), "setsockopt/getsockopt IP_TOS");
    println!(
        "raw:    setsockopt(IP_TOS, {low_delay:#04x}) in an unsafe block; read back {got:#04x}"
    );
    println!("cost:   the errno, the lengths and the types are ours to get right again");

    println!("== language limitations: a signal mask belongs to a thread ==");
    let (tid_tx, tid_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let early = std::thread::spawn(move || {
        tid_tx.send(this_tid()).unwrap();
        let _ = done_rx.recv();
    });
    let early_tid = tid_rx.recv()?;
    SignalSet::default()
        .with(Signal::USR1)
        .block_current_thread()?;
    let (tid_tx, tid_rx) = mpsc::channel();
    let (late_done_tx, late_done_rx) = mpsc::channel::<()>();
    let late = std::thread::spawn(move || {
        tid_tx.send(this_tid()).unwrap();
        let _ = late_done_rx.recv();
    });
    let late_tid = tid_rx.recv()?;
    println!("main thread blocked SIGUSR1 (SignalSet::block_current_thread)");
    for (who, tid) in [
        ("main thread", this_tid()),
        ("thread spawned before", early_tid),
        ("thread spawned after", late_tid),
    ] {
        let state = if usr1_blocked(tid) {
            "blocked"
        } else {
            "NOT blocked: the kernel may deliver SIGUSR1 here"
        };
        println!("  {who:<22} SIGUSR1 {state}");
    }
    println!(
        "the compiler cannot see the order: block (or create the SignalFd) before spawning threads, as the docs say"
    );
    done_tx.send(())?;
    late_done_tx.send(())?;
    early.join().expect("early thread");
    late.join().expect("late thread");
    Ok(())
}
