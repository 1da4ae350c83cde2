//! Time limits are ceilings: `connectTimeoutMs` is for the whole connect, shared among the
//! addresses a name has (each gets its share, as Go divides it), and no call runs past its
//! `timeoutMs`. Silent addresses are loopback listeners whose backlog is full: the kernel
//! drops further SYNs, as a black-holed host does.

mod support;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use pan_offline::{Client, Config, OfflineDownload, Status, Token};
use support::{Emulator, TOKEN};

/// A listener on `ip:port` that accepts nothing and whose queue is full: connects to it hang.
fn silent(ip: &str, port: u16) -> (TcpListener, Vec<TcpStream>) {
    let l =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    let addr: SocketAddr = format!("{ip}:{port}").parse().expect("addr");
    l.bind(&addr.into()).expect("bind");
    l.listen(0).expect("listen");
    let l: TcpListener = l.into();
    let fill = (0..3)
        .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_millis(100)).ok())
        .collect();
    (l, fill)
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port")
}

#[test]
fn the_connect_limit_is_shared_among_addresses_and_calls_end_in_time() {
    let emu = Emulator::start();
    let port = port_of(&emu.url);
    let _silent: Vec<_> = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
        .iter()
        .map(|ip| silent(ip, port))
        .collect();
    let token = Token::new(TOKEN).expect("token");
    let opts = OfflineDownload::new("https://example.com/t.mp4").expect("opts");
    let client = |addrs: &str, connect_ms: u64, timeout_ms: u64| {
        let json = serde_json::json!({
            "baseUrl": format!("http://pan.test:{port}"),
            "resolve": [format!("pan.test:{port}:{addrs}")],
            "connectTimeoutMs": connect_ms,
            "timeoutMs": timeout_ms,
            "maxRetries": 0,
        });
        Client::new(Config::from_json(&json.to_string()).expect("config")).expect("client")
    };
    // One silent address before the live one: reached after its share (2 s of 3), not 3 s.
    let t = Instant::now();
    client("127.0.0.2,127.0.0.1", 3000, 8000)
        .offline_download(Some(&token), &opts)
        .expect("the live address is reached");
    let one = t.elapsed();
    assert!(one < Duration::from_millis(2600), "{one:?}");
    // Three silent addresses: the connect limit is for all of them (was 9 s: 3 s each).
    let t = Instant::now();
    let e = client("127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.1", 3000, 8000)
        .offline_download(Some(&token), &opts)
        .expect_err("the limit is spent on the silent ones");
    let three = t.elapsed();
    assert_eq!(e.status(), Status::Timeout, "{e}");
    assert!(three < Duration::from_millis(3500), "{three:?}");
    // The call's own limit below the connect limit: the call ends at it.
    let t = Instant::now();
    let e = client("127.0.0.2,127.0.0.3,127.0.0.1", 10_000, 1500)
        .offline_download(Some(&token), &opts)
        .expect_err("timeoutMs");
    let call = t.elapsed();
    assert_eq!(e.status(), Status::Timeout, "{e}");
    assert!(call < Duration::from_millis(1900), "{call:?}");
    println!(
        "1 silent address then a live one: {one:?}; 3 silent: {three:?} (connect 3 s); \
         timeoutMs 1.5 s with connect 10 s: {call:?}"
    );
}
