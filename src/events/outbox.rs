//! The outbox: every event is first appended to a local, fsync'ed spool ([`super::spool`]) and
//! only then published; a spooled event is forgotten only once the publisher acknowledged it.
//!
//! **Who owns what.** One writer thread owns the file being appended to. Requests hand it framed
//! records over a channel; it takes every record waiting (up to [`GROUP`]), writes them in one
//! `write`, and makes them durable with one `fdatasync` before it answers each of them (group
//! commit: concurrent writes share one fsync). The drain task reads durable
//! records back from the files in order and acknowledges them ([`Outbox::ack`]), which moves the
//! cursor and deletes segments read to their end.
//!
//! **The bound.** The spool holds at most `events.max_spool_bytes` of unacknowledged records.
//! A `before_response` write reserves room for the largest event *before* its backend call
//! ([`Outbox::reserve`]), so when the spool is full the write is refused (503) without having
//! happened, and an event that has been answered for always fits. `best_effort` events take only
//! their own size, when they are ready; one that does not fit is dropped and counted.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::{Notify, mpsc, oneshot};

use super::spool::{self, CorruptTail, HEADER, Position, SEGMENT_BYTES};

/// Records the writer takes at most per write + fsync.
const GROUP: usize = 1024;

/// Why an event could not be spooled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpoolError {
    /// Unpublished events already fill `events.max_spool_bytes`.
    #[error("the event spool is full ({bytes} of {max} bytes wait to be published)")]
    Full {
        /// Bytes spooled or reserved.
        bytes: u64,
        /// The bound.
        max: u64,
    },
    /// Writing or syncing the spool failed.
    #[error("the event spool cannot be written: {0}")]
    Io(String),
    /// The writer has stopped (the process is ending).
    #[error("the event spool is closed")]
    Closed,
}

/// The backlog as `/ready` and `/metrics` report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    /// Unacknowledged events.
    pub entries: u64,
    /// Their bytes, framing included.
    pub bytes: u64,
    /// Bytes reserved by writes in flight.
    pub reserved: u64,
    /// `events.max_spool_bytes`.
    pub max_bytes: u64,
    /// A `before_response` write would be refused now.
    pub full: bool,
}

/// One segment as the spool tracks it.
#[derive(Debug)]
struct Segment {
    seq: u64,
    /// Bytes durable on disk (the reader never reads past them).
    end: u64,
    /// No more records will be appended (a later segment exists, or a write to it failed).
    sealed: bool,
}

/// What the writer and the drain share.
#[derive(Debug)]
struct State {
    segments: VecDeque<Segment>,
    /// The first record not yet acknowledged.
    read: Position,
    entries: u64,
    bytes: u64,
    reserved: u64,
}

#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    state: Mutex<State>,
    /// Wakes the drain when records became durable.
    durable: Notify,
    max_bytes: u64,
    /// Room a `before_response` write reserves: the largest event plus its header.
    reservation: u64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes `bytes` of room, or says how full the spool is.
    fn take(self: &Arc<Self>, bytes: u64) -> Result<Reservation, SpoolError> {
        let mut state = self.lock();
        let used = state.bytes + state.reserved;
        if used + bytes > self.max_bytes {
            return Err(SpoolError::Full {
                bytes: used,
                max: self.max_bytes,
            });
        }
        state.reserved += bytes;
        Ok(Reservation {
            shared: self.clone(),
            bytes,
        })
    }
}

/// Room held in the spool for one event; given back when dropped unused (a failed write).
#[derive(Debug)]
pub struct Reservation {
    shared: Arc<Shared>,
    bytes: u64,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.shared.lock().reserved -= self.bytes;
        }
    }
}

enum Command {
    Append {
        frame: Vec<u8>,
        /// Reserved bytes the writer gives back once the record is written (or failed).
        reserved: u64,
        done: Option<oneshot::Sender<Result<(), SpoolError>>>,
    },
    Flush(oneshot::Sender<()>),
}

/// Durable records read back for publishing, and where the next batch starts.
#[derive(Debug)]
pub(crate) struct Batch {
    /// Payloads (events as JSON), in spool order.
    pub(crate) payloads: Vec<Vec<u8>>,
    /// Position after the last.
    end: Position,
    /// Bytes they take in the spool.
    bytes: u64,
}

/// The spool and its writer thread.
#[derive(Debug)]
pub struct Outbox {
    shared: Arc<Shared>,
    commands: mpsc::UnboundedSender<Command>,
    /// Held for the outbox's life: one process per spool folder.
    _lock: File,
}

impl Outbox {
    /// Opens (creating) the spool in `dir`, recovers what a previous process left (bad tails
    /// moved aside and returned) and starts the writer thread. Fails when another process holds
    /// the folder or it cannot be read.
    pub fn open(
        dir: &Path,
        max_bytes: u64,
        max_event_bytes: usize,
    ) -> io::Result<(Outbox, Vec<CorruptTail>)> {
        std::fs::create_dir_all(dir)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))?;
        lock.try_lock().map_err(|_| {
            io::Error::other(format!(
                "event spool {} is in use by another gateway process (give each its own events.spool_dir)",
                dir.display()
            ))
        })?;
        let (state, tails, next) = recover(dir)?;
        let shared = Arc::new(Shared {
            dir: dir.to_owned(),
            state: Mutex::new(state),
            durable: Notify::new(),
            max_bytes,
            reservation: max_event_bytes as u64 + HEADER,
        });
        let (commands, receiver) = mpsc::unbounded_channel();
        let writer = Writer {
            shared: shared.clone(),
            next,
            file: None,
        };
        std::thread::Builder::new()
            .name("event-spool".to_owned())
            .spawn(move || writer.run(receiver))?;
        let outbox = Outbox {
            shared,
            commands,
            _lock: lock,
        };
        Ok((outbox, tails))
    }

    /// Reserves room for one event of a `before_response` write, before its backend call.
    pub fn reserve(&self) -> Result<Reservation, SpoolError> {
        self.shared.take(self.shared.reservation)
    }

    /// Appends `payload` in the room `reservation` holds and waits until it is durable.
    pub async fn append(
        &self,
        payload: &[u8],
        mut reservation: Reservation,
    ) -> Result<(), SpoolError> {
        let (done, answer) = oneshot::channel();
        let mut frame = Vec::with_capacity(payload.len() + HEADER as usize);
        spool::frame(payload, &mut frame);
        let reserved = std::mem::take(&mut reservation.bytes);
        let command = Command::Append {
            frame,
            reserved,
            done: Some(done),
        };
        if self.commands.send(command).is_err() {
            self.shared.lock().reserved -= reserved;
            return Err(SpoolError::Closed);
        }
        answer.await.unwrap_or(Err(SpoolError::Closed))
    }

    /// Hands `payload` to the writer without waiting (`best_effort`); `Err(Full)` when it does
    /// not fit.
    pub fn offer(&self, payload: &[u8]) -> Result<(), SpoolError> {
        let mut frame = Vec::with_capacity(payload.len() + HEADER as usize);
        spool::frame(payload, &mut frame);
        let mut reservation = self.shared.take(frame.len() as u64)?;
        let reserved = std::mem::take(&mut reservation.bytes);
        let command = Command::Append {
            frame,
            reserved,
            done: None,
        };
        self.commands.send(command).map_err(|_| {
            self.shared.lock().reserved -= reserved;
            SpoolError::Closed
        })
    }

    /// Waits until every record handed over so far has been written.
    pub async fn flush(&self) {
        let (done, flushed) = oneshot::channel();
        if self.commands.send(Command::Flush(done)).is_ok() {
            let _ = flushed.await;
        }
    }

    /// The backlog now.
    pub fn backlog(&self) -> Backlog {
        let state = self.shared.lock();
        let used = state.bytes + state.reserved;
        Backlog {
            entries: state.entries,
            bytes: state.bytes,
            reserved: state.reserved,
            max_bytes: self.shared.max_bytes,
            full: used + self.shared.reservation > self.shared.max_bytes,
        }
    }

    /// Waits until records may have become durable (or at once if some wait).
    pub(crate) async fn wait_for_records(&self) {
        let notified = self.shared.durable.notified();
        if self.shared.lock().entries > 0 {
            return;
        }
        notified.await;
    }

    /// The next durable records in order, at most about `max_bytes` of them (at least one);
    /// `None` when every durable record has been acknowledged.
    pub(crate) async fn next_batch(&self, max_bytes: u64) -> io::Result<Option<Batch>> {
        let Some((seq, from, end)) = self.next_range() else {
            return Ok(None);
        };
        let dir = self.shared.dir.clone();
        let read = tokio::task::spawn_blocking(move || {
            spool::read_records(&dir, seq, (from, end), max_bytes)
        });
        let (payloads, after) = read.await.map_err(io::Error::other)??;
        Ok(Some(Batch {
            payloads,
            end: Position { seq, offset: after },
            bytes: after - from,
        }))
    }

    /// The segment and byte range the next batch is read from.
    fn next_range(&self) -> Option<(u64, u64, u64)> {
        let mut state = self.shared.lock();
        self.drop_read_segments(&mut state);
        let first = state.segments.front()?;
        let from = if state.read.seq == first.seq {
            state.read.offset
        } else {
            0
        };
        (from < first.end).then_some((first.seq, from, first.end))
    }

    /// Marks `batch` published: the cursor moves past it and segments read to their end go.
    pub(crate) fn ack(&self, batch: &Batch) -> io::Result<()> {
        let mut state = self.shared.lock();
        state.read = batch.end;
        state.entries -= batch.payloads.len() as u64;
        state.bytes -= batch.bytes;
        self.drop_read_segments(&mut state);
        spool::write_cursor(&self.shared.dir, state.read)
    }

    /// Deletes the sealed segments before the read position, or read to their end.
    fn drop_read_segments(&self, state: &mut State) {
        while let Some(first) = state.segments.front() {
            let done = first.seq < state.read.seq
                || (first.seq == state.read.seq && first.sealed && state.read.offset >= first.end);
            let empty_and_sealed = first.sealed && first.end == 0;
            if !(done || empty_and_sealed) {
                return;
            }
            let seq = first.seq;
            state.segments.pop_front();
            if let Err(e) = std::fs::remove_file(spool::segment_path(&self.shared.dir, seq)) {
                tracing::warn!(error = %e, seq, "cannot delete a published spool segment");
            }
        }
    }
}

/// Reads what a previous process left: segments from the cursor on, checked record by record.
fn recover(dir: &Path) -> io::Result<(State, Vec<CorruptTail>, u64)> {
    let cursor = spool::read_cursor(dir).unwrap_or_default();
    let mut state = State {
        segments: VecDeque::new(),
        read: Position::default(),
        entries: 0,
        bytes: 0,
        reserved: 0,
    };
    let (mut tails, mut last) = (Vec::new(), cursor.seq);
    for seq in spool::segments(dir)? {
        last = last.max(seq);
        if seq < cursor.seq {
            std::fs::remove_file(spool::segment_path(dir, seq))?;
            continue;
        }
        let start = if seq == cursor.seq { cursor.offset } else { 0 };
        let (recovered, tail) = spool::recover_segment(dir, seq, start)?;
        if state.segments.is_empty() {
            state.read = Position {
                seq,
                offset: recovered.start,
            };
        }
        state.entries += recovered.entries;
        state.bytes += recovered.end - recovered.start;
        state.segments.push_back(Segment {
            seq,
            end: recovered.end,
            sealed: true,
        });
        tails.extend(tail);
    }
    Ok((state, tails, last + 1))
}

/// The writer thread's state: the segment being appended to.
struct Writer {
    shared: Arc<Shared>,
    /// The sequence number of the next segment to create.
    next: u64,
    file: Option<(File, u64)>,
}

impl Writer {
    /// Takes records until every sender is gone: each round writes and syncs what waits.
    fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        while let Some(first) = commands.blocking_recv() {
            let mut round = vec![first];
            while round.len() < GROUP {
                match commands.try_recv() {
                    Ok(command) => round.push(command),
                    Err(_) => break,
                }
            }
            self.round(round);
        }
        if let Some((file, _)) = &self.file {
            let _ = file.sync_data();
        }
    }

    fn round(&mut self, round: Vec<Command>) {
        let (mut bytes, mut entries, mut reserved) = (Vec::new(), 0u64, 0u64);
        let (mut acks, mut flushes) = (Vec::new(), Vec::new());
        for command in round {
            match command {
                Command::Append {
                    frame,
                    reserved: r,
                    done,
                } => {
                    bytes.extend_from_slice(&frame);
                    entries += 1;
                    reserved += r;
                    acks.extend(done);
                }
                Command::Flush(done) => flushes.push(done),
            }
        }
        if entries > 0 {
            let result = self.write(&bytes).map_err(|e| {
                tracing::error!(error = %e, "event spool write failed; its writes are answered 503");
                SpoolError::Io(e.to_string())
            });
            {
                let mut state = self.shared.lock();
                state.reserved -= reserved;
                if result.is_ok() {
                    state.entries += entries;
                    state.bytes += bytes.len() as u64;
                }
            }
            self.shared.durable.notify_one();
            for ack in acks {
                let _ = ack.send(result.clone());
            }
        }
        for done in flushes {
            let _ = done.send(());
        }
    }

    /// Appends `bytes` to the current segment (a new one past [`SEGMENT_BYTES`]) and syncs it.
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self
            .file
            .as_ref()
            .is_none_or(|(_, len)| *len > 0 && len + bytes.len() as u64 > SEGMENT_BYTES)
        {
            self.roll()?;
        }
        let Some((file, len)) = self.file.as_mut() else {
            return Err(io::Error::other("no spool segment"));
        };
        let written = file.write_all(bytes).and_then(|()| file.sync_data());
        if let Err(e) = written {
            // What was half written stays past the segment's durable end (never read back here;
            // a later process finds it by checksum); the next round starts a new segment.
            self.seal();
            self.file = None;
            return Err(e);
        }
        *len += bytes.len() as u64;
        let new_len = *len;
        if let Some(segment) = self.shared.lock().segments.back_mut() {
            segment.end = new_len;
        }
        Ok(())
    }

    /// Seals the current segment and creates the next one.
    fn roll(&mut self) -> io::Result<()> {
        self.seal();
        let seq = self.next;
        let path = spool::segment_path(&self.shared.dir, seq);
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(path)?;
        spool::sync_dir(&self.shared.dir)?;
        self.next += 1;
        self.file = Some((file, 0));
        self.shared.lock().segments.push_back(Segment {
            seq,
            end: 0,
            sealed: false,
        });
        Ok(())
    }

    fn seal(&mut self) {
        if let Some(segment) = self.shared.lock().segments.back_mut() {
            segment.sealed = true;
        }
    }
}
