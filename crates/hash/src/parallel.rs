//! Multi-core hashing: [`MultiCoreEngine`] and its submit/complete [`HashQueue`].

use crate::engine::{Algorithm, Digest, HashEngine, Job};
use crate::merkle;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

/// A batch is split across threads only when each thread gets at least this much work
/// (in bytes of SHA-1-equivalent cost, about 0.5 ms with SHA extensions). Starting a helper
/// thread takes tens of microseconds on an idle machine but can take milliseconds on a busy
/// one, and the batch is not done until the helper has started and returned, so smaller
/// batches stay on the caller's thread.
const MIN_WORK_PER_THREAD: u64 = 1 << 20;

/// Locks `mutex`, ignoring poisoning: no code of this module panics while holding a lock, and
/// the guarded data (queues and flags) stays consistent even if a user callback did.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

type Task = Box<dyn FnOnce() + Send + 'static>;

/// Persistent workers' shared state.
struct Pool {
    state: Mutex<PoolState>,
    work_ready: Condvar,
}

struct PoolState {
    tasks: VecDeque<Task>,
    /// Set when the engine is dropped: workers finish the queued tasks, then exit.
    shutdown: bool,
    /// Workers that were started and have not exited.
    workers: usize,
    /// Workers waiting for a task: a push only wakes one when some are idle.
    idle: usize,
}

impl Pool {
    /// Queues `task`, or hands it back when no worker will ever run it.
    fn push(&self, task: Task) -> Result<(), Task> {
        let mut state = lock(&self.state);
        if state.shutdown || state.workers == 0 {
            return Err(task);
        }
        state.tasks.push_back(task);
        let wake = state.idle > 0;
        drop(state);
        if wake {
            self.work_ready.notify_one();
        }
        Ok(())
    }

    fn worker_loop(&self) {
        loop {
            let task = {
                let mut state = lock(&self.state);
                loop {
                    if let Some(task) = state.tasks.pop_front() {
                        break Some(task);
                    }
                    if state.shutdown {
                        break None;
                    }
                    state.idle += 1;
                    state = self
                        .work_ready
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                    state.idle -= 1;
                }
            };
            let Some(task) = task else { break };
            // A task only panics if a user's completion callback does; keep the worker alive
            // for the other queued tasks (the result was delivered before the callback ran).
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(task));
        }
        lock(&self.state).workers -= 1;
    }
}

/// A [`HashEngine`] that uses every core.
///
/// - [`run`](HashEngine::run) splits a batch across `threads` threads: the caller's thread
///   and `threads - 1` helpers, which claim units of work one at a time, largest first, so
///   that uneven jobs and a busy core still balance. A unit is a job, or 512 KiB of a larger
///   Merkle piece (the piece hash is then combined from the parts' subtree roots), so even a
///   single v2 piece is hashed on every thread. Jobs borrow their data, and borrowed data
///   can only be lent to threads that end before the call returns (without `unsafe`), so the
///   helpers are scoped threads started per batch; batches with less than 1 MiB of work per
///   thread run on the caller's thread alone.
/// - [`queue`](Self::queue) gives a [`HashQueue`]: submit owned buffers with an id, collect
///   the digests later. It runs on `threads` persistent worker threads, started on first use
///   and joined when the engine is dropped. On a busy machine a sleeping worker resumes within
///   tens of microseconds while a new thread can wait milliseconds for a core, so callers
///   that own their buffers get the steadier speed-up from the queue
///   (docs/benchmarks/hash.md has the figures).
///
/// ```
/// use webtorrent_hash::{Algorithm, Digest, HashEngine, Job, MultiCoreEngine};
///
/// let engine = MultiCoreEngine::new(2);
/// let pieces: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; 256 * 1024]).collect();
/// let mut jobs: Vec<Job<'_>> = pieces.iter().map(|p| Job::new(p, Algorithm::Sha1)).collect();
/// engine.run(&mut jobs);
/// assert_eq!(jobs[3].digest, Some(Digest::Sha1(webtorrent_hash::sha1(&pieces[3]))));
/// ```
pub struct MultiCoreEngine {
    threads: usize,
    pool: Arc<Pool>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl MultiCoreEngine {
    /// An engine that uses `threads` threads (at least 1).
    #[must_use]
    pub fn new(threads: usize) -> Self {
        Self {
            threads: threads.max(1),
            pool: Arc::new(Pool {
                state: Mutex::new(PoolState {
                    tasks: VecDeque::new(),
                    shutdown: false,
                    workers: 0,
                    idle: 0,
                }),
                work_ready: Condvar::new(),
            }),
            workers: Mutex::new(Vec::new()),
        }
    }

    /// Number of threads this engine hashes on.
    #[must_use]
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Starts the persistent workers if they are not running yet.
    fn start_workers(&self) {
        let mut workers = lock(&self.workers);
        if !workers.is_empty() {
            return;
        }
        for i in 0..self.threads {
            let pool = Arc::clone(&self.pool);
            // Count the worker before it starts so that it can never decrement below zero.
            lock(&self.pool.state).workers += 1;
            let spawned = std::thread::Builder::new()
                .name(format!("webtorrent-hash-{i}"))
                .spawn(move || pool.worker_loop());
            match spawned {
                Ok(handle) => workers.push(handle),
                Err(_) => {
                    // Out of threads: run with the workers we have (or inline, with none).
                    lock(&self.pool.state).workers -= 1;
                    break;
                }
            }
        }
    }

    /// A submit/complete queue on this engine's persistent workers.
    ///
    /// `D` is the buffer type (`Vec<u8>`, `Arc<[u8]>`, `bytes::Bytes`, ...); it is handed
    /// back with the digest, so the caller can store a verified piece without copying it.
    #[must_use]
    pub fn queue<D: AsRef<[u8]> + Send + 'static>(&self) -> HashQueue<D> {
        self.new_queue(None)
    }

    /// Like [`queue`](Self::queue), and calls `notify` on a worker thread after each job
    /// completes: an async driver can pass a closure that wakes its task (for example
    /// `tokio::sync::Notify::notify_one`). `notify` should be quick and must not block.
    #[must_use]
    pub fn queue_with_notify<D: AsRef<[u8]> + Send + 'static>(
        &self,
        notify: impl Fn() + Send + Sync + 'static,
    ) -> HashQueue<D> {
        self.new_queue(Some(Box::new(notify)))
    }

    fn new_queue<D>(&self, notify: Option<Notify>) -> HashQueue<D> {
        self.start_workers();
        HashQueue {
            pool: Arc::clone(&self.pool),
            results: Arc::new(Results {
                done: Mutex::new(Done {
                    queue: VecDeque::new(),
                    waiting: false,
                    wake_at: 1,
                }),
                ready: Condvar::new(),
                notify,
            }),
            pending: 0,
        }
    }

    /// Number of helper threads worth starting for `units` of `jobs`.
    fn helpers_for(&self, jobs: &[Job<'_>], units: &[Unit]) -> usize {
        let work: u64 = jobs
            .iter()
            .map(|job| job.algorithm.cost(job.data.len()))
            .sum();
        let by_work = usize::try_from(work / MIN_WORK_PER_THREAD).unwrap_or(usize::MAX);
        (self.threads - 1)
            .min(units.len().saturating_sub(1))
            .min(by_work.saturating_sub(1))
    }
}

impl Default for MultiCoreEngine {
    /// One thread per available core.
    fn default() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, std::num::NonZero::get))
    }
}

impl std::fmt::Debug for MultiCoreEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiCoreEngine")
            .field("threads", &self.threads)
            .field("workers_started", &lock(&self.workers).len())
            .finish()
    }
}

impl Drop for MultiCoreEngine {
    fn drop(&mut self) {
        lock(&self.pool.state).shutdown = true;
        self.pool.work_ready.notify_all();
        let workers = std::mem::take(&mut *lock(&self.workers));
        for worker in workers {
            // A worker never panics (tasks run under catch_unwind); nothing to report.
            let _ = worker.join();
        }
    }
}

/// Merkle pieces longer than this are hashed in parts of this size (an aligned subtree of 32
/// leaves), so that a batch of a few large v2 pieces, or a single one, still uses every
/// thread.
const PART_BYTES: usize = 512 * 1024;

/// Height of a part's subtree above the leaves.
const PART_HEIGHT: u32 = (PART_BYTES / crate::BLOCK_SIZE).trailing_zeros();

/// A unit of work of a batch: a whole job, or one part of a large Merkle piece.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Unit {
    job: usize,
    /// `None`: the whole job; `Some(p)`: bytes `p * PART_BYTES ..` of a Merkle piece.
    part: Option<usize>,
    cost: u64,
}

/// The units of `jobs`, costliest first (so that the last units to be claimed are small
/// and the threads finish together).
fn units_of(jobs: &[Job<'_>]) -> Vec<Unit> {
    let mut units = Vec::with_capacity(jobs.len());
    for (job, j) in jobs.iter().enumerate() {
        match split_piece_length(j) {
            Some(_) => {
                for part in 0..j.data.len().div_ceil(PART_BYTES) {
                    let len = (j.data.len() - part * PART_BYTES).min(PART_BYTES);
                    units.push(Unit {
                        job,
                        part: Some(part),
                        cost: j.algorithm.cost(len),
                    });
                }
            }
            None => units.push(Unit {
                job,
                part: None,
                cost: j.algorithm.cost(j.data.len()),
            }),
        }
    }
    units.sort_by_key(|u| std::cmp::Reverse(u.cost));
    units
}

/// The piece length of a Merkle piece job worth splitting into parts: a valid piece length,
/// data longer than one part and no longer than the piece.
fn split_piece_length(job: &Job<'_>) -> Option<usize> {
    match job.algorithm {
        Algorithm::MerklePiece { piece_length }
            if merkle::validate_piece_length(piece_length).is_ok()
                && job.data.len() > PART_BYTES
                && job.data.len() <= piece_length =>
        {
            Some(piece_length)
        }
        _ => None,
    }
}

/// Hashes one unit: the job's digest, or the root of the part's subtree.
fn hash_unit(jobs: &[Job<'_>], unit: &Unit) -> Digest {
    let job = &jobs[unit.job];
    match unit.part {
        None => job.algorithm.hash(job.data),
        Some(part) => {
            let start = (part * PART_BYTES).min(job.data.len());
            let end = (start + PART_BYTES).min(job.data.len());
            // A short last part is padded with zero leaves to a full part, as in the piece.
            Digest::Sha256(merkle::piece_hash(&job.data[start..end], PART_BYTES))
        }
    }
}

/// Claims units from `next` until none are left; returns `(unit index, digest)` for each.
fn claim_and_hash(jobs: &[Job<'_>], units: &[Unit], next: &AtomicUsize) -> Vec<(usize, Digest)> {
    let mut done = Vec::new();
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(unit) = units.get(i) else { break };
        done.push((i, hash_unit(jobs, unit)));
    }
    done
}

/// Combines the units' digests into one digest per job; `None` where a unit is missing.
fn assemble(jobs: &[Job<'_>], units: &[Unit], digests: &[Option<Digest>]) -> Vec<Option<Digest>> {
    let mut whole: Vec<Option<Digest>> = vec![None; jobs.len()];
    let mut parts: Vec<Vec<Option<merkle::Node>>> = vec![Vec::new(); jobs.len()];
    for (unit, digest) in units.iter().zip(digests) {
        match (unit.part, digest) {
            (None, Some(digest)) => whole[unit.job] = Some(*digest),
            (Some(part), Some(Digest::Sha256(root))) => {
                let slots = &mut parts[unit.job];
                if slots.len() <= part {
                    slots.resize(part + 1, None);
                }
                slots[part] = Some(*root);
            }
            _ => {}
        }
    }
    for (job, (slot, roots)) in jobs.iter().zip(whole.iter_mut().zip(parts)) {
        let Some(piece_length) = split_piece_length(job) else {
            continue;
        };
        let roots: Option<Vec<merkle::Node>> = roots.into_iter().collect();
        if let Some(roots) = roots.filter(|r| r.len() == job.data.len().div_ceil(PART_BYTES)) {
            let width = piece_length / PART_BYTES;
            let root = merkle::root_padded(&roots, width, merkle::pad_hash(PART_HEIGHT));
            *slot = Some(Digest::Sha256(root));
        }
    }
    whole
}

impl HashEngine for MultiCoreEngine {
    fn run(&self, jobs: &mut [Job<'_>]) {
        let units = units_of(jobs);
        let helpers = self.helpers_for(jobs, &units);
        if helpers == 0 {
            for job in jobs.iter_mut() {
                job.compute();
            }
            return;
        }
        let next = AtomicUsize::new(0);
        let shared: &[Job<'_>] = jobs;
        let finished = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..helpers)
                .filter_map(|i| {
                    std::thread::Builder::new()
                        .name(format!("webtorrent-hash-run-{i}"))
                        .spawn_scoped(scope, || claim_and_hash(shared, &units, &next))
                        // If a thread cannot be started, the others claim its share.
                        .ok()
                })
                .collect();
            let mut finished = claim_and_hash(shared, &units, &next);
            for handle in handles {
                // Hashing does not panic; if a helper did anyway, its jobs are redone below.
                if let Ok(theirs) = handle.join() {
                    finished.extend(theirs);
                }
            }
            finished
        });
        let mut unit_digests: Vec<Option<Digest>> = vec![None; units.len()];
        for (i, digest) in finished {
            // `i` came from `units.get(i)`, so it is in range.
            if let Some(slot) = unit_digests.get_mut(i) {
                *slot = Some(digest);
            }
        }
        let digests = assemble(shared, &units, &unit_digests);
        for (job, digest) in jobs.iter_mut().zip(digests) {
            match digest {
                Some(digest) => job.digest = Some(digest),
                None => job.compute(),
            }
        }
    }

    fn parallelism(&self) -> usize {
        self.threads
    }
}

type Notify = Box<dyn Fn() + Send + Sync + 'static>;

/// A finished job from a [`HashQueue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completed<D> {
    /// The id given to [`HashQueue::submit`].
    pub id: u64,
    /// The hash of `data`.
    pub digest: Digest,
    /// The submitted buffer, handed back.
    pub data: D,
}

struct Results<D> {
    done: Mutex<Done<D>>,
    ready: Condvar,
    notify: Option<Notify>,
}

/// Completed jobs not yet collected.
struct Done<D> {
    queue: VecDeque<Completed<D>>,
    /// The queue's owner is blocked in [`HashQueue::complete`] or
    /// [`HashQueue::complete_all`].
    waiting: bool,
    /// Number of queued results at which the waiting owner wants to be woken.
    wake_at: usize,
}

impl<D> Results<D> {
    fn deliver(&self, completed: Completed<D>) {
        let mut done = lock(&self.done);
        done.queue.push_back(completed);
        let wake = done.waiting && done.queue.len() >= done.wake_at;
        drop(done);
        if wake {
            self.ready.notify_one();
        }
        if let Some(notify) = &self.notify {
            notify();
        }
    }
}

/// Submit/complete hashing on a [`MultiCoreEngine`]'s persistent workers, for callers that
/// must not block (such as network tasks verifying pieces).
///
/// Jobs may complete in any order; match them by id. Dropping the queue with jobs still
/// pending is fine: they finish and are discarded. Dropping the engine waits for the jobs
/// already queued; submissions after that are hashed on the submitting thread, so no job is
/// ever lost.
///
/// ```
/// use webtorrent_hash::{Algorithm, MultiCoreEngine};
///
/// let engine = MultiCoreEngine::new(2);
/// let mut queue = engine.queue::<Vec<u8>>();
/// queue.submit(7, b"piece seven".to_vec(), Algorithm::Sha1);
/// queue.submit(8, b"piece eight".to_vec(), Algorithm::Sha1);
/// let mut ids = Vec::new();
/// while let Some(done) = queue.complete() {
///     assert_eq!(done.digest.sha1(), Some(webtorrent_hash::sha1(&done.data)));
///     ids.push(done.id);
/// }
/// ids.sort();
/// assert_eq!(ids, [7, 8]);
/// ```
pub struct HashQueue<D> {
    pool: Arc<Pool>,
    results: Arc<Results<D>>,
    /// Submitted and not yet collected.
    pending: usize,
}

impl<D: AsRef<[u8]> + Send + 'static> HashQueue<D> {
    /// Queues `data` for hashing with `algorithm`; [`try_complete`](Self::try_complete) or
    /// [`complete`](Self::complete) later returns it with its digest and `id`.
    pub fn submit(&mut self, id: u64, data: D, algorithm: Algorithm) {
        let results = Arc::clone(&self.results);
        let task: Task = Box::new(move || {
            let digest = algorithm.hash(data.as_ref());
            results.deliver(Completed { id, digest, data });
        });
        self.pending += 1;
        if let Err(task) = self.pool.push(task) {
            // No worker will run it (the engine is gone): hash it here.
            task();
        }
    }

    /// A completed job, if one is ready; never blocks.
    pub fn try_complete(&mut self) -> Option<Completed<D>> {
        let completed = lock(&self.results.done).queue.pop_front()?;
        self.pending -= 1;
        Some(completed)
    }

    /// Waits for the next completed job; `None` when nothing is pending.
    pub fn complete(&mut self) -> Option<Completed<D>> {
        if self.pending == 0 {
            return None;
        }
        let mut done = self.wait_for(1);
        let completed = done.queue.pop_front()?;
        drop(done);
        self.pending -= 1;
        Some(completed)
    }

    /// Waits until every pending job is done and returns them all, in completion order.
    ///
    /// Cheaper than calling [`complete`](Self::complete) in a loop when jobs are small: the
    /// caller is woken once instead of once per job.
    pub fn complete_all(&mut self) -> Vec<Completed<D>> {
        if self.pending == 0 {
            return Vec::new();
        }
        let mut done = self.wait_for(self.pending);
        let all: Vec<Completed<D>> = done.queue.drain(..).collect();
        drop(done);
        self.pending -= all.len();
        all
    }

    /// Blocks until at least `count` results are queued (`count <= pending`).
    fn wait_for(&self, count: usize) -> MutexGuard<'_, Done<D>> {
        let mut done = lock(&self.results.done);
        // Only this queue's owner waits (`&mut self` callers), so one flag is enough.
        done.wake_at = count;
        while done.queue.len() < count {
            done.waiting = true;
            done = self
                .results
                .ready
                .wait(done)
                .unwrap_or_else(PoisonError::into_inner);
        }
        done.waiting = false;
        done
    }

    /// Jobs submitted and not yet collected.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.pending
    }
}

impl<D> std::fmt::Debug for HashQueue<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashQueue")
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BLOCK_SIZE, SingleThreadEngine, merkle, sha1};
    use proptest::prelude::*;
    use std::sync::atomic::AtomicU64;

    fn data(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    #[test]
    fn run_splits_big_batches_and_matches_single_thread() {
        let buffers: Vec<Vec<u8>> = (0..16u8)
            .map(|i| data(300_000 + usize::from(i), i))
            .collect();
        let engine = MultiCoreEngine::new(2);
        let mut jobs: Vec<Job<'_>> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let algorithm = match i % 3 {
                    0 => Algorithm::Sha1,
                    1 => Algorithm::Sha256,
                    _ => Algorithm::MerklePiece {
                        piece_length: 32 * BLOCK_SIZE,
                    },
                };
                Job::new(b, algorithm)
            })
            .collect();
        assert!(engine.helpers_for(&jobs, &units_of(&jobs)) > 0);
        let mut expected = jobs.clone();
        SingleThreadEngine.run(&mut expected);
        engine.run(&mut jobs);
        assert_eq!(jobs, expected);
    }

    #[test]
    fn engine_and_queue_can_move_between_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<MultiCoreEngine>();
        send_sync::<HashQueue<Vec<u8>>>();
        send_sync::<HashQueue<Arc<[u8]>>>();
        send_sync::<Completed<Vec<u8>>>();
    }

    #[test]
    fn small_batches_stay_on_the_caller() {
        let engine = MultiCoreEngine::new(4);
        let block = vec![0u8; BLOCK_SIZE];
        let jobs = vec![Job::new(&block, Algorithm::Sha1); 4];
        assert_eq!(engine.helpers_for(&jobs, &units_of(&jobs)), 0);
        assert_eq!(engine.parallelism(), 4);
        assert_eq!(MultiCoreEngine::new(0).threads(), 1);
    }

    #[test]
    fn large_merkle_pieces_are_split_and_match() {
        let piece_length = 4 << 20;
        let buffers: Vec<Vec<u8>> = [
            piece_length,
            piece_length - 5,
            PART_BYTES + 1,
            3 * PART_BYTES,
            PART_BYTES,
            100,
        ]
        .iter()
        .enumerate()
        .map(|(i, &len)| data(len, i as u8))
        .collect();
        let mut jobs: Vec<Job<'_>> = buffers
            .iter()
            .map(|b| Job::new(b, Algorithm::MerklePiece { piece_length }))
            .collect();
        // Not split: an invalid piece length, data longer than the piece, SHA-1.
        jobs.push(Job::new(
            &buffers[0],
            Algorithm::MerklePiece {
                piece_length: 3 << 20,
            },
        ));
        jobs.push(Job::new(
            &buffers[0],
            Algorithm::MerklePiece {
                piece_length: 1 << 20,
            },
        ));
        jobs.push(Job::new(&buffers[0], Algorithm::Sha1));
        let units = units_of(&jobs);
        assert_eq!(units.iter().filter(|u| u.job == 0).count(), 8);
        assert_eq!(units.iter().filter(|u| u.job == 1).count(), 8);
        assert_eq!(units.iter().filter(|u| u.job == 2).count(), 2);
        assert_eq!(units.iter().filter(|u| u.job == 3).count(), 3);
        for job in 4..jobs.len() {
            assert_eq!(units.iter().filter(|u| u.job == job).count(), 1);
        }
        assert!(units.windows(2).all(|w| w[0].cost >= w[1].cost));

        let mut expected = jobs.clone();
        SingleThreadEngine.run(&mut expected);
        MultiCoreEngine::new(2).run(&mut jobs);
        assert_eq!(jobs, expected);

        // One large piece alone still uses both threads.
        let mut one = vec![Job::new(
            &buffers[0],
            Algorithm::MerklePiece { piece_length },
        )];
        let engine = MultiCoreEngine::new(2);
        assert_eq!(engine.helpers_for(&one, &units_of(&one)), 1);
        engine.run(&mut one);
        assert_eq!(one[0].digest, expected[0].digest);
    }

    #[test]
    fn missing_parts_fall_back_to_whole_jobs() {
        let buffer = data(3 * PART_BYTES, 9);
        let jobs = vec![Job::new(
            &buffer,
            Algorithm::MerklePiece {
                piece_length: 4 << 20,
            },
        )];
        let units = units_of(&jobs);
        let mut digests: Vec<Option<Digest>> =
            units.iter().map(|u| Some(hash_unit(&jobs, u))).collect();
        assert_eq!(
            assemble(&jobs, &units, &digests)[0],
            Some(
                Algorithm::MerklePiece {
                    piece_length: 4 << 20
                }
                .hash(&buffer)
            )
        );
        digests[1] = None;
        assert_eq!(assemble(&jobs, &units, &digests)[0], None);
    }

    #[test]
    fn rerun_overwrites_digests() {
        let engine = MultiCoreEngine::new(2);
        let buffers: Vec<Vec<u8>> = (0..4u8).map(|i| data(1 << 20, i)).collect();
        let mut jobs: Vec<Job<'_>> = buffers
            .iter()
            .map(|b| Job {
                data: b,
                algorithm: Algorithm::Sha1,
                digest: Some(Digest::Sha1([0; 20])),
            })
            .collect();
        engine.run(&mut jobs);
        for (job, buffer) in jobs.iter().zip(&buffers) {
            assert_eq!(job.digest, Some(Digest::Sha1(sha1(buffer))));
        }
    }

    #[test]
    fn queue_completes_every_job_and_notifies() {
        let engine = MultiCoreEngine::new(2);
        let notified = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&notified);
        let mut queue = engine.queue_with_notify::<Arc<[u8]>>(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        assert!(queue.try_complete().is_none());
        assert!(queue.complete().is_none());
        for id in 0..40u64 {
            let buffer: Arc<[u8]> = data(20_000 + id as usize, id as u8).into();
            let algorithm = if id % 2 == 0 {
                Algorithm::Sha1
            } else {
                Algorithm::MerklePiece {
                    piece_length: 2 * BLOCK_SIZE,
                }
            };
            queue.submit(id, buffer, algorithm);
        }
        assert_eq!(queue.pending(), 40);
        let mut seen = Vec::new();
        while let Some(done) = queue.complete() {
            let expected = if done.id % 2 == 0 {
                Digest::Sha1(sha1(&done.data))
            } else {
                Digest::Sha256(merkle::piece_hash(&done.data, 2 * BLOCK_SIZE))
            };
            assert_eq!(done.digest, expected);
            seen.push(done.id);
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..40).collect::<Vec<_>>());
        assert_eq!(queue.pending(), 0);
        assert_eq!(notified.load(Ordering::SeqCst), 40);
    }

    #[test]
    fn complete_all_collects_everything() {
        let engine = MultiCoreEngine::new(2);
        let mut queue = engine.queue::<Vec<u8>>();
        assert!(queue.complete_all().is_empty());
        for id in 0..100u64 {
            queue.submit(id, data(BLOCK_SIZE, id as u8), Algorithm::Sha256);
        }
        let first = queue.complete().map(|c| c.id);
        assert!(first.is_some());
        let rest = queue.complete_all();
        assert_eq!(rest.len(), 99);
        assert_eq!(queue.pending(), 0);
        let mut ids: Vec<u64> = rest.iter().map(|c| c.id).chain(first).collect();
        ids.sort_unstable();
        assert_eq!(ids, (0..100).collect::<Vec<_>>());
        for done in rest {
            assert_eq!(done.digest, Digest::Sha256(crate::sha256(&done.data)));
        }
    }

    #[test]
    fn queue_outlives_engine() {
        let engine = MultiCoreEngine::new(1);
        let mut queue = engine.queue::<Vec<u8>>();
        queue.submit(1, vec![1; 100_000], Algorithm::Sha256);
        drop(engine);
        // Queued before the drop: finished by the worker before it exited.
        let first = queue.complete().map(|c| c.id);
        assert_eq!(first, Some(1));
        // Submitted after the drop: hashed inline.
        queue.submit(2, b"abc".to_vec(), Algorithm::Sha1);
        let second = queue.try_complete();
        assert_eq!(
            second.map(|c| (c.id, c.digest)),
            Some((2, Digest::Sha1(sha1(b"abc"))))
        );
    }

    #[test]
    fn panicking_notify_does_not_lose_results() {
        let engine = MultiCoreEngine::new(1);
        let mut queue = engine.queue_with_notify::<Vec<u8>>(|| panic!("callback bug"));
        queue.submit(1, vec![0; 10], Algorithm::Sha1);
        queue.submit(2, vec![0; 10], Algorithm::Sha1);
        assert!(queue.complete().is_some());
        assert!(queue.complete().is_some());
    }

    fn arb_algorithm() -> impl Strategy<Value = Algorithm> {
        prop_oneof![
            Just(Algorithm::Sha1),
            Just(Algorithm::Sha256),
            (0u32..4).prop_map(|h| Algorithm::MerklePiece {
                piece_length: BLOCK_SIZE << h
            }),
            // Invalid piece lengths still get a digest.
            (0usize..100_000).prop_map(|piece_length| Algorithm::MerklePiece { piece_length }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn engine_equals_single_thread(
            specs in proptest::collection::vec((0usize..200_000, any::<u8>(), arb_algorithm()), 0..24),
            threads in 1usize..4,
        ) {
            let buffers: Vec<Vec<u8>> = specs.iter().map(|(len, seed, _)| data(*len, *seed)).collect();
            let mut jobs: Vec<Job<'_>> = buffers
                .iter()
                .zip(&specs)
                .map(|(b, (_, _, algorithm))| Job::new(b, *algorithm))
                .collect();
            let mut expected = jobs.clone();
            SingleThreadEngine.run(&mut expected);
            let engine = MultiCoreEngine::new(threads);
            engine.run(&mut jobs);
            prop_assert_eq!(&jobs, &expected);

            let mut queue = engine.queue::<Vec<u8>>();
            for (id, (buffer, (_, _, algorithm))) in buffers.iter().zip(&specs).enumerate() {
                queue.submit(id as u64, buffer.clone(), *algorithm);
            }
            let mut queued = vec![None; specs.len()];
            while let Some(done) = queue.complete() {
                queued[done.id as usize] = Some(done.digest);
            }
            let expected_digests: Vec<_> = expected.iter().map(|j| j.digest).collect();
            prop_assert_eq!(queued, expected_digests);
        }

        #[test]
        fn split_pieces_equal_single_thread(
            lens in proptest::collection::vec(0usize..(2 << 20), 1..4),
            piece_shift in 0u32..3,
        ) {
            let piece_length = (512 * 1024) << piece_shift;
            let buffers: Vec<Vec<u8>> = lens
                .iter()
                .enumerate()
                .map(|(i, &len)| data(len.min(piece_length), i as u8))
                .collect();
            let mut jobs: Vec<Job<'_>> = buffers
                .iter()
                .map(|b| Job::new(b, Algorithm::MerklePiece { piece_length }))
                .collect();
            let mut expected = jobs.clone();
            SingleThreadEngine.run(&mut expected);
            MultiCoreEngine::new(2).run(&mut jobs);
            prop_assert_eq!(jobs, expected);
        }
    }
}
