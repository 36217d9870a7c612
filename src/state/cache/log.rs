//! The recent invalidations, numbered, so an answer fetched while a write was being answered is
//! not stored: a miss notes the epoch when it starts, and its answer is stored only when no
//! invalidation since then touched one of its tags.
//!
//! Bounded: past [`LOG_LEN`] invalidations during one fetch, the fetch is assumed to be touched
//! (its answer is served but not stored), which errs towards a miss, never towards a stale hit.

use std::collections::VecDeque;

use super::tags::Tags;

/// Invalidations remembered; more during one backend call than this and its answer is not stored.
const LOG_LEN: usize = 1024;

/// Numbered recent invalidations; `None` tags mean everything was dropped.
#[derive(Debug, Default)]
pub(super) struct InvalidationLog {
    epoch: u64,
    recent: VecDeque<(u64, Option<Tags>)>,
}

impl InvalidationLog {
    /// The number of the last invalidation.
    pub(super) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Notes an invalidation of `tags` (`None`: of everything).
    pub(super) fn record(&mut self, tags: Option<Tags>) {
        self.epoch += 1;
        self.recent.push_back((self.epoch, tags));
        if self.recent.len() > LOG_LEN {
            self.recent.pop_front();
        }
    }

    /// True when an invalidation after `since` dropped everything or one of `tags` (or when
    /// the log no longer reaches back that far).
    pub(super) fn touched_since(&self, since: u64, tags: &Tags) -> bool {
        if since == self.epoch {
            return false;
        }
        if self
            .recent
            .front()
            .is_none_or(|(first, _)| *first > since + 1)
        {
            return true;
        }
        self.recent
            .iter()
            .filter(|(epoch, _)| *epoch > since)
            .any(|(_, dropped)| dropped.as_ref().is_none_or(|d| overlap(d, tags)))
    }
}

/// True when the two sets share a tag.
pub(super) fn overlap(a: &Tags, b: &Tags) -> bool {
    a.iter().any(|t| b.contains(t))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn tags(list: &[&str]) -> Tags {
        list.iter().map(|t| Arc::from(*t)).collect()
    }

    #[test]
    fn only_invalidations_of_a_shared_tag_after_the_start_touch_a_fetch() {
        let mut log = InvalidationLog::default();
        log.record(Some(tags(&["a"])));
        let start = log.epoch();
        assert!(!log.touched_since(start, &tags(&["a"])));
        log.record(Some(tags(&["b"])));
        assert!(!log.touched_since(start, &tags(&["a"])));
        assert!(log.touched_since(start, &tags(&["b", "c"])));
        log.record(None);
        assert!(log.touched_since(start, &tags(&["z"])));
    }

    #[test]
    fn a_fetch_older_than_the_log_counts_as_touched() {
        let mut log = InvalidationLog::default();
        let start = log.epoch();
        for _ in 0..=LOG_LEN {
            log.record(Some(tags(&["other"])));
        }
        assert!(log.touched_since(start, &tags(&["mine"])));
    }
}
