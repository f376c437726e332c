//! A TCP link between inlet and PostgreSQL that a test can cut: every open
//! connection is dropped and new ones are refused until it is restored. It
//! is an outage as the processes see one (the server gone from the network)
//! without stopping the server other tests share.

use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct DatabaseLink {
    port: u16,
    /// `true` while the link is cut.
    cut: watch::Sender<bool>,
    accepting: tokio::task::JoinHandle<()>,
}

impl DatabaseLink {
    /// Forward a local port to `target` (`host:port`).
    pub async fn start(target: &str) -> DatabaseLink {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (cut, watching) = watch::channel(false);
        let target: Arc<str> = target.into();
        let accepting = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { return };
                if *watching.borrow() {
                    continue; // refused: dropped at once
                }
                let (target, mut cut) = (Arc::clone(&target), watching.clone());
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&*target).await else { return };
                    let (mut client, mut server) = (client, server);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        DatabaseLink { port, cut, accepting }
    }

    /// `url` (a PostgreSQL URL on 127.0.0.1:5432) through this link.
    pub fn url(&self, url: &str) -> String {
        url.replace("127.0.0.1:5432", &format!("127.0.0.1:{}", self.port))
    }

    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    pub fn restore(&self) {
        self.cut.send_replace(false);
    }
}

impl Drop for DatabaseLink {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}
