//! Literal search shared by every Sigma rule: all `contains` literals that rules test on one field go into one
//! Aho-Corasick automaton, and one pass over a value finds every literal it holds. The engine tests rules one
//! after the other, so a per-thread cache keeps each value's hits for the next rules: thirteen webserver rules
//! searching the same access line cost one pass, not thirteen.
//!
//! The cache is keyed by where the value lives and checked against a copy of its bytes, so a hit is only ever
//! used for the very same text; it is bounded and simply cleared when full.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

use super::predicate::Target;

/// Most values whose hits a thread remembers (a batch of events rarely has more).
const CACHE_ENTRIES: usize = 8192;
/// Values longer than this are searched without caching (copying them would cost more than it saves).
const CACHE_MAX_BYTES: usize = 4096;
/// Up to this many literals per field a DFA is built (about twice as fast to search as the default NFA, and
/// under a few megabytes); beyond, the crate's default.
const DFA_LITERALS: usize = 1000;
/// Bytes of value copies a thread keeps.
const CACHE_TEXT_BYTES: usize = 2 << 20;

/// One automaton over the literals of one field, ignoring ASCII case or not.
pub(crate) struct Scanner {
    /// Unique for the process's lifetime (addresses are reused), so cached hits never outlive their automaton.
    serial: u64,
    /// Set once the compilation that hands the scanner out has seen all its literals.
    automaton: OnceLock<AhoCorasick>,
}

impl std::fmt::Debug for Scanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scanner({} literals)", self.automaton.get().map_or(0, AhoCorasick::patterns_len))
    }
}

/// Which literals of a scanner a test looks for.
#[derive(Clone, Debug)]
pub(crate) struct Literals {
    pub scanner: Arc<Scanner>,
    pub ids: Box<[u32]>,
}

impl Literals {
    /// Any of them occurs in `hay` (`identity` says where `hay` lives, for the cache).
    pub fn any(&self, hay: &[u8], identity: usize) -> bool {
        self.scanner.with_hits(hay, identity, |bits| self.ids.iter().any(|&i| bit(bits, i)))
    }

    /// All of them occur in `hay`.
    pub fn all(&self, hay: &[u8], identity: usize) -> bool {
        self.scanner.with_hits(hay, identity, |bits| self.ids.iter().all(|&i| bit(bits, i)))
    }
}

fn bit(bits: &[u64], i: u32) -> bool {
    bits.get(i as usize / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
}

impl Scanner {
    fn search(&self, hay: &[u8], bits: &mut [u64]) {
        let Some(ac) = self.automaton.get() else { return };
        for m in ac.find_overlapping_iter(hay) {
            let i = m.pattern().as_usize();
            bits[i / 64] |= 1 << (i % 64);
        }
    }

    fn words(&self) -> usize {
        self.automaton.get().map_or(0, |ac| ac.patterns_len().div_ceil(64))
    }

    fn with_hits<R>(&self, hay: &[u8], identity: usize, f: impl FnOnce(&[u64]) -> R) -> R {
        let words = self.words();
        if hay.len() > CACHE_MAX_BYTES {
            let mut bits = vec![0u64; words];
            self.search(hay, &mut bits);
            return f(&bits);
        }
        let key = (self.serial, identity, hay.len());
        HITS.with(|cache| {
            let mut cache = cache.borrow_mut();
            let cache = &mut *cache;
            if let Some(&(text, bits)) = cache.index.get(&key) {
                if cache.text[text..text + hay.len()] == *hay {
                    return f(&cache.bits[bits..bits + words]);
                }
            }
            // Arenas instead of an allocation per entry; all of it is dropped at once when full.
            if cache.index.len() >= CACHE_ENTRIES || cache.text.len() + hay.len() > CACHE_TEXT_BYTES {
                cache.index.clear();
                cache.text.clear();
                cache.bits.clear();
            }
            let (text, bits) = (cache.text.len(), cache.bits.len());
            cache.text.extend_from_slice(hay);
            cache.bits.resize(bits + words, 0);
            self.search(hay, &mut cache.bits[bits..]);
            cache.index.insert(key, (text, bits));
            f(&cache.bits[bits..])
        })
    }
}

/// Keys are addresses and lengths: mixing them is hash enough.
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(23) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Where each cached value's copy and hits are in the arenas.
#[derive(Default)]
struct HitCache {
    index: HashMap<(u64, usize, usize), (usize, usize), BuildHasherDefault<AddressHasher>>,
    text: Vec<u8>,
    bits: Vec<u64>,
}

static SERIAL: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static HITS: RefCell<HitCache> = RefCell::new(HitCache::default());
}

/// Collects the literals of a compilation, per field and case mode, then builds their automata.
#[derive(Default)]
pub(crate) struct LiteralSets {
    sets: RefCell<HashMap<(Target, bool), LiteralSet>>,
}

struct LiteralSet {
    scanner: Arc<Scanner>,
    words: Vec<Vec<u8>>,
    index: HashMap<Vec<u8>, u32>,
}

impl LiteralSets {
    /// Registers `literals` for `target` (ASCII case ignored unless `cased`).
    pub fn register(&self, target: &Target, cased: bool, literals: &[Vec<u8>]) -> Literals {
        let mut sets = self.sets.borrow_mut();
        let set = sets.entry((target.clone(), cased)).or_insert_with(|| LiteralSet {
            scanner: Arc::new(Scanner { serial: SERIAL.fetch_add(1, Ordering::Relaxed), automaton: OnceLock::new() }),
            words: Vec::new(),
            index: HashMap::new(),
        });
        let ids = literals
            .iter()
            .map(|l| {
                if let Some(&i) = set.index.get(l) {
                    return i;
                }
                let i = set.words.len() as u32;
                set.words.push(l.clone());
                set.index.insert(l.clone(), i);
                i
            })
            .collect();
        Literals { scanner: set.scanner.clone(), ids }
    }

    /// Builds every automaton; the scanners handed out so far become usable.
    pub fn finish(self) -> Result<(), String> {
        for ((target, cased), set) in self.sets.into_inner() {
            let ac = AhoCorasick::builder()
                .ascii_case_insensitive(!cased)
                .match_kind(MatchKind::Standard)
                .kind((set.words.len() <= DFA_LITERALS).then_some(AhoCorasickKind::DFA))
                .build(&set.words)
                .map_err(|e| format!("cannot build the literal matcher of {target}: {e}"))?;
            let _ = set.scanner.automaton.set(ac);
        }
        Ok(())
    }
}
