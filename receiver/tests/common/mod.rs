//! A raw HTTP/1.1 client over `TcpStream`, so the tests see exactly what goes on the wire.
#![allow(dead_code)] // Each test binary uses a different part.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use fasthog_receiver::Receiver;
use serde_json::{json, Value};

pub const KEY: &str = "phc_test_key";

/// One connection to the receiver.
pub struct Client {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("response body is JSON")
    }

    /// The `code` of an error body.
    pub fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_string()
    }
}

impl Client {
    pub fn connect(receiver: &Receiver) -> Client {
        let stream = TcpStream::connect(receiver.addr()).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Client { reader: BufReader::new(stream.try_clone().unwrap()), writer: stream }
    }

    pub fn set_read_timeout(&self, t: Duration) {
        self.writer.set_read_timeout(Some(t)).unwrap();
    }

    /// Writes raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.writer.write_all(bytes)
    }

    /// Sends a POST with `Content-Length` and these extra headers.
    pub fn send(&mut self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> io::Result<()> {
        let mut head = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        self.send_raw(&bytes)
    }

    /// Sends a POST and reads the response.
    pub fn post(&mut self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        self.send(path, headers, body).expect("send");
        self.read_response().expect("response")
    }

    /// Reads one response (body by `Content-Length`).
    pub fn read_response(&mut self) -> io::Result<Response> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let status = line.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status line");
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let (n, v) = l.split_once(':').expect("header");
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
        let mut response = Response { status, headers, body: String::new() };
        let len: usize = response.header("content-length").map(|v| v.parse().unwrap()).unwrap_or(0);
        let mut body = vec![0; len];
        self.reader.read_exact(&mut body)?;
        response.body = String::from_utf8(body).unwrap();
        Ok(response)
    }

    /// True if the server closed the connection (EOF within the read timeout).
    pub fn is_closed(&mut self) -> bool {
        let mut byte = [0];
        matches!(self.reader.read(&mut byte), Ok(0))
    }
}

/// POSTs `body` to `/batch/` on a fresh connection.
pub fn post(receiver: &Receiver, body: &[u8]) -> Response {
    Client::connect(receiver).post("/batch/", &[], body)
}

/// An event with a distinct uuid derived from `i`.
pub fn event(i: u32) -> Value {
    json!({
        "event": "page_view",
        "distinct_id": format!("user-{i}"),
        "properties": {"$lib": "fasthog", "n": i},
        "timestamp": "2024-05-01T12:00:00Z",
        "uuid": uuid(i),
    })
}

pub fn uuid(i: u32) -> String {
    format!("0190a4b2-c3d4-7e5f-8a6b-{i:012x}")
}

/// A batch body with the test key.
pub fn batch(events: &[Value]) -> Vec<u8> {
    json!({"api_key": KEY, "batch": events, "sent_at": "2024-05-01T12:00:01Z"}).to_string().into_bytes()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}
