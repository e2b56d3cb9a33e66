//! Which version an instance runs: the canary's stable hash and the
//! rollout states. Pure functions, so the rules are tested without a
//! database.

use sha2::{Digest, Sha256};

/// Where a rollout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RolloutState {
    /// Instances in the canary run the new version, the others the
    /// previous one.
    Rolling,
    /// Every instance runs the new version.
    Complete,
    /// Stopped by hand: every instance runs the previous version.
    Aborted,
    /// Rolled back (`dbroute rollback`): every instance runs the previous
    /// version.
    RolledBack,
    /// The new version failed on an instance: every instance runs the
    /// previous version.
    Failed,
}

impl RolloutState {
    /// The state's name in the registry (`rolling`, `complete`, `aborted`,
    /// `rolled_back`, `failed`).
    ///
    /// # Examples
    ///
    /// ```
    /// use dbroute::registry::RolloutState;
    /// assert_eq!(RolloutState::RolledBack.as_str(), "rolled_back");
    /// assert_eq!("rolled_back".parse::<RolloutState>(), Ok(RolloutState::RolledBack));
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            RolloutState::Rolling => "rolling",
            RolloutState::Complete => "complete",
            RolloutState::Aborted => "aborted",
            RolloutState::RolledBack => "rolled_back",
            RolloutState::Failed => "failed",
        }
    }
}

impl std::fmt::Display for RolloutState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RolloutState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "rolling" => RolloutState::Rolling,
            "complete" => RolloutState::Complete,
            "aborted" => RolloutState::Aborted,
            "rolled_back" => RolloutState::RolledBack,
            "failed" => RolloutState::Failed,
            other => return Err(format!("unknown rollout state `{other}`")),
        })
    }
}

/// The latest rollout of a router, as far as choosing a version goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LatestRollout {
    pub(crate) version: i32,
    pub(crate) previous_version: Option<i32>,
    pub(crate) percent: i16,
    pub(crate) state: RolloutState,
}

impl LatestRollout {
    /// The version the whole fleet runs outside a canary: the new version
    /// once complete, else the previous one.
    pub(crate) fn stable_version(&self) -> Option<i32> {
        match self.state {
            RolloutState::Complete => Some(self.version),
            _ => self.previous_version,
        }
    }

    /// The version the instance in `bucket` runs.
    pub(crate) fn version_for(&self, bucket: u8) -> Option<i32> {
        match self.state {
            RolloutState::Rolling if i16::from(bucket) < self.percent => Some(self.version),
            _ => self.stable_version(),
        }
    }
}

/// The canary bucket of an instance, 0 to 99: the first 8 bytes of the
/// SHA-256 of its id, big-endian, modulo 100. A rollout at `P` percent
/// reaches exactly the instances whose bucket is below `P`; the bucket
/// never changes for an id, so a rollout raised from 10 to 25 percent
/// keeps its first instances.
///
/// # Examples
///
/// ```
/// use dbroute::registry::canary_bucket;
/// let bucket = canary_bucket("checkout-7f3a");
/// assert!(bucket < 100);
/// assert_eq!(bucket, canary_bucket("checkout-7f3a"));
/// ```
pub fn canary_bucket(instance_id: &str) -> u8 {
    let digest = Sha256::digest(instance_id.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % 100) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollout(state: RolloutState, percent: i16) -> LatestRollout {
        LatestRollout {
            version: 2,
            previous_version: Some(1),
            percent,
            state,
        }
    }

    #[test]
    fn a_canary_reaches_the_buckets_below_its_percent() {
        let r = rollout(RolloutState::Rolling, 25);
        assert_eq!(r.version_for(0), Some(2));
        assert_eq!(r.version_for(24), Some(2));
        assert_eq!(r.version_for(25), Some(1));
        assert_eq!(rollout(RolloutState::Rolling, 0).version_for(0), Some(1));
        assert_eq!(rollout(RolloutState::Rolling, 100).version_for(99), Some(2));
    }

    #[test]
    fn only_a_complete_rollout_moves_the_fleet() {
        assert_eq!(rollout(RolloutState::Complete, 25).version_for(99), Some(2));
        for state in [RolloutState::Aborted, RolloutState::RolledBack, RolloutState::Failed] {
            assert_eq!(rollout(state, 100).version_for(0), Some(1), "{state}");
        }
        let first = LatestRollout {
            previous_version: None,
            ..rollout(RolloutState::RolledBack, 100)
        };
        assert_eq!(first.version_for(0), None);
    }

    #[test]
    fn states_round_trip_and_buckets_spread() {
        for s in ["rolling", "complete", "aborted", "rolled_back", "failed"] {
            assert_eq!(s.parse::<RolloutState>().unwrap().as_str(), s);
        }
        assert!("done".parse::<RolloutState>().is_err());
        let below: usize = (0..1000)
            .filter(|i| canary_bucket(&format!("instance-{i}")) < 25)
            .count();
        assert!((150..350).contains(&below), "{below} of 1000 under 25%");
    }
}
