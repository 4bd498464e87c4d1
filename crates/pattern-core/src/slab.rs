//! A generational slab: O(1) insert, lookup and removal keyed by [`Token`], with stale tokens refused.

use crate::Token;

#[derive(Debug)]
enum Entry<T> {
    Occupied { generation: u32, value: T },
    Vacant { generation: u32, next_free: u32 },
}

const NO_FREE: u32 = u32::MAX;

/// A table of values named by generational [`Token`]s, the registration table of a dispatcher.
///
/// Removing a value bumps its slot's generation, so the old token is refused from then on,
/// even after the slot is reused. Freed slots are reused first (LIFO), which keeps the table
/// as small as the largest number of live values.
///
/// ```
/// use pattern_core::Slab;
///
/// let mut slab = Slab::default();
/// let a = slab.insert("a").unwrap();
/// assert_eq!(slab.remove(a), Some("a"));
/// let b = slab.insert("b").unwrap();
/// assert_eq!(a.index(), b.index()); // the slot is reused...
/// assert_eq!(slab.get(a), None);     // ...but the stale token is refused
/// assert_eq!(slab.get(b), Some(&"b"));
/// ```
#[derive(Debug)]
pub struct Slab<T> {
    entries: Vec<Entry<T>>,
    free_head: u32,
    len: usize,
    capacity: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Self::with_limit(Token::MAX_INDEX as usize)
    }
}

impl<T> Slab<T> {
    /// A slab that refuses to hold more than `limit` values.
    pub fn with_limit(limit: usize) -> Self {
        Slab {
            entries: Vec::new(),
            free_head: NO_FREE,
            len: 0,
            capacity: limit.min(Token::MAX_INDEX as usize),
        }
    }

    /// The most values this slab holds.
    pub fn limit(&self) -> usize {
        self.capacity
    }

    /// Number of live values.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no value is live.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Stores `value`, or gives it back when the slab is at its limit.
    pub fn insert(&mut self, value: T) -> Result<Token, T> {
        if self.len >= self.capacity {
            return Err(value);
        }
        self.len += 1;
        if self.free_head != NO_FREE {
            let index = self.free_head;
            let entry = &mut self.entries[index as usize];
            let Entry::Vacant {
                generation,
                next_free,
            } = *entry
            else {
                unreachable!("free list points at an occupied slot")
            };
            self.free_head = next_free;
            *entry = Entry::Occupied { generation, value };
            Ok(Token::new(index, generation))
        } else {
            let index = self.entries.len() as u32;
            self.entries.push(Entry::Occupied {
                generation: 0,
                value,
            });
            Ok(Token::new(index, 0))
        }
    }

    /// The value for `token`, if it is live and the generation matches.
    pub fn get(&self, token: Token) -> Option<&T> {
        match self.entries.get(token.index() as usize)? {
            Entry::Occupied { generation, value } if *generation == token.generation() => {
                Some(value)
            }
            _ => None,
        }
    }

    /// The value for `token`, mutably.
    pub fn get_mut(&mut self, token: Token) -> Option<&mut T> {
        match self.entries.get_mut(token.index() as usize)? {
            Entry::Occupied { generation, value } if *generation == token.generation() => {
                Some(value)
            }
            _ => None,
        }
    }

    /// Whether `token` names a live value.
    pub fn contains(&self, token: Token) -> bool {
        self.get(token).is_some()
    }

    /// Takes the value out; the token and every copy of it go stale.
    pub fn remove(&mut self, token: Token) -> Option<T> {
        let index = token.index();
        let entry = self.entries.get_mut(index as usize)?;
        match entry {
            Entry::Occupied { generation, .. } if *generation == token.generation() => {
                let next = Entry::Vacant {
                    generation: generation.wrapping_add(1),
                    next_free: self.free_head,
                };
                let Entry::Occupied { value, .. } = std::mem::replace(entry, next) else {
                    unreachable!()
                };
                self.free_head = index;
                self.len -= 1;
                Some(value)
            }
            _ => None,
        }
    }

    /// The tokens of every live value, in slot order.
    pub fn tokens(&self) -> Vec<Token> {
        self.iter().map(|(t, _)| t).collect()
    }

    /// Iterates over live values with their tokens, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (Token, &T)> {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| match e {
                Entry::Occupied { generation, value } => {
                    Some((Token::new(i as u32, *generation), value))
                }
                Entry::Vacant { .. } => None,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_gives_the_value_back() {
        let mut s = Slab::with_limit(2);
        s.insert(1).unwrap();
        let b = s.insert(2).unwrap();
        assert_eq!(s.insert(3), Err(3));
        s.remove(b);
        assert!(s.insert(4).is_ok());
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn stale_and_unknown_tokens_are_refused() {
        let mut s = Slab::default();
        let a = s.insert('a').unwrap();
        assert_eq!(s.remove(a), Some('a'));
        assert_eq!(s.remove(a), None);
        assert!(s.get_mut(a).is_none());
        assert!(s.get(Token::new(99, 0)).is_none());
        let b = s.insert('b').unwrap();
        assert_eq!(b.index(), a.index());
        assert_eq!(b.generation(), a.generation() + 1);
        assert!(!s.contains(a));
        assert_eq!(s.tokens(), vec![b]);
    }

    #[test]
    fn reuse_keeps_table_as_small_as_peak() {
        let mut s = Slab::default();
        let toks: Vec<_> = (0..100).map(|i| s.insert(i).unwrap()).collect();
        for t in &toks {
            s.remove(*t);
        }
        for i in 0..100 {
            s.insert(i).unwrap();
        }
        assert_eq!(s.entries.len(), 100);
        assert_eq!(s.len(), 100);
    }
}
