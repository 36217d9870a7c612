//! Series keyed by labels ([`Family`]), created on first use, and the [`Labels`] a key must
//! provide to be rendered.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, PoisonError, RwLock};

use super::series::{Counter, Gauge, Histogram};

/// Label names and values of one series.
pub trait Labels: Eq + Hash + Clone + Ord {
    /// `name="value"` pairs, in order.
    fn pairs(&self) -> Vec<(&'static str, String)>;
}

/// Two labels: `(name, value)` twice.
pub type LabelPair = ((&'static str, String), (&'static str, String));

impl Labels for LabelPair {
    fn pairs(&self) -> Vec<(&'static str, String)> {
        vec![(self.0.0, self.0.1.clone()), (self.1.0, self.1.1.clone())]
    }
}

impl Labels for (&'static str, String) {
    fn pairs(&self) -> Vec<(&'static str, String)> {
        vec![(self.0, self.1.clone())]
    }
}

/// Series keyed by labels, created on first use.
#[derive(Debug)]
pub struct Family<K, V> {
    series: RwLock<HashMap<K, Arc<V>>>,
    make: fn() -> V,
}

impl<K: Labels, V> Family<K, V> {
    /// An empty family whose series start as `make` makes them.
    pub(super) fn new(make: fn() -> V) -> Family<K, V> {
        Family {
            series: RwLock::new(HashMap::new()),
            make,
        }
    }

    /// The series for `labels`.
    pub fn get(&self, labels: &K) -> Arc<V> {
        if let Some(v) = self
            .series
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(labels)
        {
            return v.clone();
        }
        let mut map = self.series.write().unwrap_or_else(PoisonError::into_inner);
        map.entry(labels.clone())
            .or_insert_with(|| Arc::new((self.make)()))
            .clone()
    }

    /// Runs `record` on the series for `labels` (created on first use) under the read lock,
    /// without touching the series' reference count (shared by every worker thread).
    pub fn with<R>(&self, labels: &K, record: impl FnOnce(&V) -> R) -> R {
        {
            let map = self.series.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(v) = map.get(labels) {
                return record(v);
            }
        }
        record(&self.get(labels))
    }

    /// Every series, sorted by labels (for rendering).
    pub(super) fn sorted(&self) -> Vec<(K, Arc<V>)> {
        let map = self.series.read().unwrap_or_else(PoisonError::into_inner);
        let mut all: Vec<(K, Arc<V>)> = map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

/// Counters by labels.
pub type CounterFamily<K> = Family<K, Counter>;
/// Gauges by labels.
pub type GaugeFamily<K> = Family<K, Gauge>;
/// Histograms by labels.
pub type HistogramFamily<K> = Family<K, Histogram>;
