//! The public listeners' connection table: how many connections are open (in all, and per client
//! address), and which are idle (the first to close when room is needed); its connections share
//! one count of held answer bytes ([`Held`]).
//!
//! The connection cap is also bounded by the process' file-descriptor limit less a reserve, so
//! the admin listener, upstream connections and files always find a descriptor.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use super::budget::{Budget, Held};
use super::connection::{Connection, Timeouts};

/// Descriptors kept out of the public listeners' reach (admin, upstreams, files, logs).
const RESERVED_DESCRIPTORS: usize = 64;

/// Under a low descriptor limit, a quarter of it stays in reserve, whichever is more.
fn reserve(limit: usize) -> usize {
    RESERVED_DESCRIPTORS.max(limit / 4)
}

/// Connections seated beyond the cap while the idle ones they replace are still closing.
const CLOSING_MARGIN: usize = 8;

/// From this share of the cap on, each new connection closes the longest-idle one.
const EVICT_FROM_PERCENT: usize = 90;

/// The open connections and what they hold.
#[derive(Debug)]
pub(crate) struct Table {
    max_connections: usize,
    max_per_ip: usize,
    held: Arc<Held>,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    next_id: u64,
    by_id: HashMap<u64, Weak<Connection>>,
    per_ip: HashMap<IpAddr, usize>,
}

/// A connection's place in the table; dropping it frees the place.
#[derive(Debug)]
pub(crate) struct Seat {
    table: Arc<Table>,
    id: u64,
    ip: IpAddr,
}

/// Why a new connection was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Full {
    /// The table holds `max_connections`, none of them idle.
    Total(usize),
    /// The client's address holds `max_connections_per_ip`.
    PerIp(usize),
}

impl Table {
    /// A table for at most `max_connections` (further bounded by the descriptor limit) and
    /// `max_per_ip` per client address (0: no such bound).
    pub(crate) fn new(max_connections: usize, max_per_ip: usize, budget: Budget) -> Table {
        let by_descriptors = descriptor_limit()
            .map(|limit| limit.saturating_sub(reserve(limit)).max(1))
            .unwrap_or(usize::MAX);
        Table {
            max_connections: max_connections.min(by_descriptors),
            max_per_ip,
            held: Arc::new(Held::new(budget)),
            open: Mutex::new(Open::default()),
        }
    }

    /// The effective connection cap.
    pub(crate) fn max_connections(&self) -> usize {
        self.max_connections
    }

    /// Open connections now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().by_id.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Closes the longest-idle connection, if one is idle (a descriptor is needed now).
    pub(crate) fn make_room(&self) {
        evict_longest_idle(&self.lock());
    }

    /// Seats a new connection from `peer`, closing the longest-idle one when the table is near
    /// its cap; `Err` when there is no room for it.
    pub(crate) fn seat(
        self: &Arc<Self>,
        peer: SocketAddr,
        timeouts: Timeouts,
    ) -> Result<(Arc<Connection>, Seat), Full> {
        let ip = peer.ip();
        let mut open = self.lock();
        if self.max_per_ip > 0 && open.per_ip.get(&ip).copied().unwrap_or(0) >= self.max_per_ip {
            return Err(Full::PerIp(self.max_per_ip));
        }
        let count = open.by_id.len();
        if count * 100 >= self.max_connections * EVICT_FROM_PERCENT {
            let evicted = evict_longest_idle(&open);
            // Evicted connections close within moments; past a small margin for them, no more.
            let over = count >= self.max_connections + CLOSING_MARGIN;
            if over || (!evicted && count >= self.max_connections) {
                return Err(Full::Total(self.max_connections));
            }
        }
        let connection = Arc::new(Connection::new(peer, timeouts, self.held.clone()));
        let id = open.next_id;
        open.next_id += 1;
        open.by_id.insert(id, Arc::downgrade(&connection));
        *open.per_ip.entry(ip).or_insert(0) += 1;
        let seat = Seat {
            table: self.clone(),
            id,
            ip,
        };
        Ok((connection, seat))
    }
}

/// Asks the connection idle the longest to close; false when none is idle.
fn evict_longest_idle(open: &Open) -> bool {
    let idle = open
        .by_id
        .values()
        .filter_map(Weak::upgrade)
        .filter(|c| !c.is_evicted())
        .filter_map(|c| c.idle_since().map(|since| (since, c)))
        .min_by_key(|(since, _)| *since);
    match idle {
        Some((_, connection)) => {
            tracing::debug!(peer = %connection.peer(), "closing an idle connection to make room");
            connection.evict();
            true
        }
        None => false,
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        let mut open = self.table.lock();
        open.by_id.remove(&self.id);
        if let Some(count) = open.per_ip.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.per_ip.remove(&self.ip);
            }
        }
    }
}

/// The process' soft limit on open file descriptors (Linux: `/proc/self/limits`).
fn descriptor_limit() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn timeouts() -> Timeouts {
        Timeouts {
            idle: Duration::from_secs(300),
            head: Duration::from_secs(10),
            write: Duration::from_secs(30),
        }
    }

    fn table(max: usize, per_ip: usize) -> Arc<Table> {
        let budget = Budget {
            total: 1 << 20,
            per_connection: 1 << 20,
        };
        Arc::new(Table::new(max, per_ip, budget))
    }

    fn peer(ip: [u8; 4], port: u16) -> SocketAddr {
        SocketAddr::from((ip, port))
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_table_closes_the_longest_idle_connection_to_seat_a_new_one() {
        let table = table(2, 0);
        let (a, _seat_a) = table.seat(peer([10, 0, 0, 1], 1), timeouts()).expect("a");
        tokio::time::advance(Duration::from_secs(5)).await;
        let (b, _seat_b) = table.seat(peer([10, 0, 0, 2], 1), timeouts()).expect("b");
        let _busy = b.begin();
        let (_c, _seat_c) = table.seat(peer([10, 0, 0, 3], 1), timeouts()).expect("c");
        assert!(a.check().is_err(), "the idle one was asked to close");
        assert!(b.check().is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_table_without_idle_connections_turns_new_ones_away() {
        let table = table(1, 0);
        let (a, seat) = table.seat(peer([10, 0, 0, 1], 1), timeouts()).expect("a");
        let _busy = a.begin();
        let refused = table.seat(peer([10, 0, 0, 2], 1), timeouts());
        assert_eq!(refused.err(), Some(Full::Total(1)));
        drop(seat);
        assert_eq!(table.len(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn one_address_is_bounded_by_max_per_ip() {
        let table = table(100, 2);
        let _one = table.seat(peer([10, 0, 0, 1], 1), timeouts()).expect("1");
        let _two = table.seat(peer([10, 0, 0, 1], 2), timeouts()).expect("2");
        let third = table.seat(peer([10, 0, 0, 1], 3), timeouts());
        assert_eq!(third.err(), Some(Full::PerIp(2)));
        assert!(table.seat(peer([10, 0, 0, 9], 1), timeouts()).is_ok());
    }

    #[test]
    fn the_descriptor_limit_is_read_from_proc() {
        assert!(descriptor_limit().is_some_and(|n| n > 0));
    }
}
