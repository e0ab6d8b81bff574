//! Load for `scripts/bench`, without installing a load tool:
//!
//! - `load http ADDR FILE CLIENTS SECONDS`: CLIENTS kept-alive connections
//!   POST the request in FILE to `send_mail` at ADDR (`127.0.0.1:8025`) as
//!   fast as answers come; prints requests per second (and failures);
//! - `load once ADDR FILE N`: N requests at once, one each; exits non-zero
//!   unless every answer says `"result":true`;
//! - `load fsync DIR THREADS SECONDS BYTES`: the baseline, from THREADS
//!   threads: write one file of BYTES, fsync it, rename it into place, fsync
//!   the directory; prints files per second.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PATH: &str = "/api/c/compapi/cmsi/send_mail/";

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// One request on `stream`; whether the answer says `"result":true`.
async fn post(
    stream: &mut TcpStream,
    request: &[u8],
    buffer: &mut Vec<u8>,
) -> Result<bool, Failure> {
    stream.write_all(request).await?;
    buffer.clear();
    let head_end = loop {
        if let Some(at) = memchr::memmem::find(buffer, b"\r\n\r\n") {
            break at + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err("connection closed".into());
        }
        buffer.extend_from_slice(chunk.get(..n).unwrap_or_default());
    };
    let head =
        String::from_utf8_lossy(buffer.get(..head_end).unwrap_or_default()).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse().ok())
        .ok_or("no content-length")?;
    while buffer.len() < head_end + length {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err("connection closed".into());
        }
        buffer.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
    let body = buffer.get(head_end..head_end + length).unwrap_or_default();
    Ok(memchr::memmem::find(body, b"\"result\":true").is_some())
}

fn request(addr: &str, file: &str) -> Result<Vec<u8>, Failure> {
    let body = std::fs::read(file)?;
    let mut request = format!(
        "POST {PATH} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    Ok(request)
}

async fn http(addr: String, file: String, clients: usize, seconds: u64) -> Result<(), Failure> {
    let request = Arc::new(request(&addr, &file)?);
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (request, done, failed, stop, addr) = (
            Arc::clone(&request),
            Arc::clone(&done),
            Arc::clone(&failed),
            Arc::clone(&stop),
            addr.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut buffer = Vec::new();
            let mut stream = TcpStream::connect(&addr).await?;
            stream.set_nodelay(true)?;
            while !stop.load(Ordering::Relaxed) {
                match post(&mut stream, &request, &mut buffer).await {
                    Ok(true) => done.fetch_add(1, Ordering::Relaxed),
                    Ok(false) => failed.fetch_add(1, Ordering::Relaxed),
                    Err(error) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        return Err::<(), Failure>(error);
                    }
                };
            }
            Ok(())
        }));
    }
    // The first second warms up; the rate counts the rest.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (started, before) = (Instant::now(), done.load(Ordering::Relaxed));
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let (elapsed, after) = (started.elapsed(), done.load(Ordering::Relaxed));
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        if let Ok(Err(error)) = task.await {
            eprintln!("client: {error}");
        }
    }
    println!(
        "{:.0} req/s ({} failed)",
        (after - before) as f64 / elapsed.as_secs_f64(),
        failed.load(Ordering::Relaxed)
    );
    Ok(())
}

async fn once(addr: String, file: String, n: usize) -> Result<(), Failure> {
    let request = Arc::new(request(&addr, &file)?);
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (request, addr) = (Arc::clone(&request), addr.clone());
            tokio::spawn(async move {
                let mut stream = TcpStream::connect(&addr).await?;
                post(&mut stream, &request, &mut Vec::new()).await
            })
        })
        .collect();
    for task in tasks {
        if !task.await?? {
            return Err("a request was refused".into());
        }
    }
    Ok(())
}

fn fsync_baseline(dir: PathBuf, threads: usize, seconds: u64, bytes: usize) -> Result<(), Failure> {
    let content = vec![b'x'; bytes];
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..threads)
        .map(|thread| {
            let (dir, content, stop, done) = (
                dir.clone(),
                content.clone(),
                Arc::clone(&stop),
                Arc::clone(&done),
            );
            std::thread::spawn(move || -> std::io::Result<()> {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let part = dir.join(format!(".{thread}-{n}.part"));
                    let mut file = std::fs::File::create(&part)?;
                    file.write_all(&content)?;
                    file.sync_all()?;
                    std::fs::rename(&part, dir.join(format!("{thread}-{n}.eml")))?;
                    std::fs::File::open(&dir)?.sync_all()?;
                    done.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
                Ok(())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let (started, before) = (Instant::now(), done.load(Ordering::Relaxed));
    std::thread::sleep(Duration::from_secs(seconds));
    let (elapsed, after) = (started.elapsed(), done.load(Ordering::Relaxed));
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().map_err(|_| "worker panicked")??;
    }
    println!(
        "{:.0} files/s",
        (after - before) as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).cloned().ok_or("missing argument");
    let number = |i: usize| -> Result<u64, Failure> { Ok(arg(i)?.parse()?) };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match arg(0)?.as_str() {
        "http" => runtime.block_on(http(arg(1)?, arg(2)?, number(3)? as usize, number(4)?)),
        "once" => runtime.block_on(once(arg(1)?, arg(2)?, number(3)? as usize)),
        "fsync" => fsync_baseline(
            PathBuf::from(arg(1)?),
            number(2)? as usize,
            number(3)?,
            number(4)? as usize,
        ),
        other => Err(format!("unknown mode {other}").into()),
    }
}
