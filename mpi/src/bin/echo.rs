//! `rustmp-mpi-echo`: the worker program of the relay tests (shipped to the ranks as bytes).
//!
//! With no arguments it serves its socket on fd 3, one command per line:
//! - `square N` → `N² host=<hostname> pid=<pid> tag=<$RUSTMP_ECHO_TAG>`
//! - `print WORD` → prints `WORD one`, then `WORD two halves` in two writes 30 ms apart, on
//!   stdout, and `WORD err` on stderr; answers `printed`
//! - `partial TEXT` → prints `TEXT` with no newline; answers `ok`
//! - `big N` → answers a line of N `x`
//! - `exit N` → exits with status N
//!
//! It exits at the end of its input. `rustmp-mpi-echo connect PATH` instead connects to the Unix
//! socket PATH, sends 40 bytes of nonsense and prints what happened (exit 0 when connected, 1
//! when refused): the tests run it as another user.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [mode, path] = args.as_slice()
        && mode == "connect"
    {
        std::process::exit(connect(path));
    }
    // SAFETY: the rank gives every worker its socket on fd 3 and nothing else owns that fd here.
    let socket = unsafe { UnixStream::from_raw_fd(3) };
    if let Err(error) = serve(socket) {
        eprintln!("rustmp-mpi-echo: {error}");
        std::process::exit(1);
    }
}

fn connect(path: &str) -> i32 {
    match UnixStream::connect(path) {
        Ok(mut stream) => {
            let _ = stream.write_all(&[0x5a; 40]);
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut reply = Vec::new();
            let _ = stream.read_to_end(&mut reply);
            println!("connected, got {} bytes", reply.len());
            0
        }
        Err(error) => {
            println!("refused: {error}");
            1
        }
    }
}

fn serve(socket: UnixStream) -> std::io::Result<()> {
    let mut out = socket.try_clone()?;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let tag = std::env::var("RUSTMP_ECHO_TAG").unwrap_or_else(|_| "none".into());
    for line in BufReader::new(socket).lines() {
        let line = line?;
        let (command, arg) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        let reply = match command {
            "square" => match arg.parse::<u64>() {
                Ok(n) => format!(
                    "{} host={} pid={} tag={tag}",
                    n * n,
                    host.trim(),
                    std::process::id()
                ),
                Err(_) => format!("error: not a number: {arg}"),
            },
            "print" => {
                let mut stdout = std::io::stdout().lock();
                writeln!(stdout, "{arg} one")?;
                write!(stdout, "{arg} two ")?;
                stdout.flush()?;
                std::thread::sleep(Duration::from_millis(30));
                writeln!(stdout, "halves")?;
                stdout.flush()?;
                eprintln!("{arg} err");
                "printed".to_string()
            }
            "partial" => {
                print!("{arg}");
                std::io::stdout().flush()?;
                "ok".to_string()
            }
            "big" => "x".repeat(arg.parse::<usize>().unwrap_or(0)),
            "exit" => std::process::exit(arg.parse().unwrap_or(1)),
            other => format!("error: unknown command {other}"),
        };
        out.write_all(format!("{reply}\n").as_bytes())?;
    }
    Ok(())
}
