//! A bounded log of recent records, newest last: what backs Basalt's STL-style system
//! tables (scans on each worker; loads, rejected rows and unloads on the leader). As on
//! Redshift, old entries age out once the log holds `N`.

use std::collections::VecDeque;
use std::sync::Mutex;

/// The time now in microseconds since the Unix epoch: how every log record and system
/// table tells time.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

#[derive(Debug)]
pub struct RecentLog<T, const N: usize> {
    items: Mutex<VecDeque<T>>,
}

impl<T, const N: usize> Default for RecentLog<T, N> {
    fn default() -> Self {
        Self {
            items: Mutex::new(VecDeque::new()),
        }
    }
}

impl<T: Clone, const N: usize> RecentLog<T, N> {
    pub fn push(&self, item: T) {
        self.extend([item]);
    }

    pub fn extend(&self, items: impl IntoIterator<Item = T>) {
        let mut q = self.items.lock().expect("recent log lock");
        for item in items {
            if q.len() == N {
                q.pop_front();
            }
            q.push_back(item);
        }
    }

    /// Every record held, oldest first.
    pub fn snapshot(&self) -> Vec<T> {
        self.items
            .lock()
            .expect("recent log lock")
            .iter()
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest() {
        let log: RecentLog<u32, 3> = RecentLog::default();
        log.extend(0..5);
        log.push(5);
        assert_eq!(log.snapshot(), vec![3, 4, 5]);
    }
}
