//! The calls that hand work to a [`Pool`], with Python's names: `apply`, `map`, `imap`,
//! `imap_unordered`, `starmap`, their `_async` forms, and the forms with a chunksize or
//! callbacks. Each names its function by a trampoline (see `task`) and submits the arguments in
//! chunks.

use super::Pool;
use super::imap::IMapIterator;
use super::result::{AsyncResult, Callbacks};
use super::task::{self, One, Star, StarFn, TaskData};
use crate::error::Result;

fn single<R>(mut v: Vec<R>) -> R {
    match v.pop() {
        Some(r) => r,
        // A chunk of one argument always gives one result.
        None => unreachable!("a task of one argument returned no result"),
    }
}

fn identity<R>(v: Vec<R>) -> Vec<R> {
    v
}

impl Pool {
    /// Runs `f(*args)` in a worker and waits for the result (Python's `apply`).
    ///
    /// ```
    /// fn add(a: i32, b: i32) -> i32 { a + b }
    /// let pool = multiprocessing::Pool::new(1).unwrap();
    /// assert_eq!(pool.apply(add, (2, 3)).unwrap(), 5);
    /// ```
    pub fn apply<F, A, R>(&self, f: F, args: A) -> Result<R>
    where
        F: StarFn<A, R> + 'static,
        A: TaskData,
        R: TaskData + Send,
    {
        self.apply_async(f, args)?.get_owned()
    }

    /// Starts `f(*args)` in a worker (Python's `apply_async`).
    ///
    /// ```
    /// fn add(a: i32, b: i32) -> i32 { a + b }
    /// let pool = multiprocessing::Pool::new(2).unwrap();
    /// let r = pool.apply_async(add, (2, 3)).unwrap();
    /// assert_eq!(r.get().unwrap(), 5);
    /// ```
    pub fn apply_async<F, A, R>(&self, f: F, args: A) -> Result<AsyncResult<R>>
    where
        F: StarFn<A, R> + 'static,
        A: TaskData,
        R: TaskData + Send,
    {
        self.apply_async_with(f, args, Callbacks::new())
    }

    /// [`apply_async`](Self::apply_async) with a success and/or error callback.
    ///
    /// ```
    /// use multiprocessing::{Callbacks, Pool};
    /// fn neg(x: i32) -> i32 { if x < 0 { panic!("negative") } x }
    /// let pool = Pool::new(1).unwrap();
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let r = pool
    ///     .apply_async_with(neg, (-1,), Callbacks::new().on_error(move |e| tx.send(e.to_string()).unwrap()))
    ///     .unwrap();
    /// assert!(r.get().is_err());
    /// assert!(rx.recv().unwrap().contains("negative"));
    /// ```
    pub fn apply_async_with<F, A, R>(
        &self,
        f: F,
        args: A,
        callbacks: Callbacks<R>,
    ) -> Result<AsyncResult<R>>
    where
        F: StarFn<A, R> + 'static,
        A: TaskData,
        R: TaskData + Send,
    {
        task::hand_over(f);
        self.submit_slot::<Star<F>, A, R, R>(vec![vec![args]], single, callbacks)
    }

    /// Applies `f` to every item and returns the results in input order (Python's `map`), with
    /// Python's default chunksize. If tasks panic, the error of the first failure is returned once
    /// every chunk has finished.
    ///
    /// ```
    /// fn inc(x: u8) -> u8 { x + 1 }
    /// let pool = multiprocessing::Pool::new(2).unwrap();
    /// assert_eq!(pool.map(inc, vec![1, 2, 3]).unwrap(), vec![2, 3, 4]);
    /// ```
    pub fn map<F, T, R, I>(&self, f: F, iterable: I) -> Result<Vec<R>>
    where
        F: Fn(T) -> R + 'static,
        I: IntoIterator<Item = T>,
        T: TaskData,
        R: TaskData + Send,
    {
        self.map_async_with(f, iterable, None, Callbacks::new())?
            .get_owned()
    }

    /// [`map`](Self::map) with an explicit chunksize (items per task sent to a worker).
    ///
    /// ```
    /// fn pid(_: u32) -> u32 { std::process::id() }
    /// let pool = multiprocessing::Pool::new(2).unwrap();
    /// let pids = pool.map_chunked(pid, 0..10, 5).unwrap();
    /// assert!(pids[..5].iter().all(|p| *p == pids[0]));
    /// assert!(pids[5..].iter().all(|p| *p == pids[5]));
    /// ```
    pub fn map_chunked<F, T, R, I>(&self, f: F, iterable: I, chunksize: usize) -> Result<Vec<R>>
    where
        F: Fn(T) -> R + 'static,
        I: IntoIterator<Item = T>,
        T: TaskData,
        R: TaskData + Send,
    {
        self.map_async_with(f, iterable, Some(chunksize), Callbacks::new())?
            .get_owned()
    }

    /// Starts a [`map`](Self::map) and returns at once (Python's `map_async`).
    ///
    /// ```
    /// fn inc(x: u8) -> u8 { x + 1 }
    /// let pool = multiprocessing::Pool::new(2).unwrap();
    /// let r = pool.map_async(inc, vec![1, 2]).unwrap();
    /// assert_eq!(r.get().unwrap(), vec![2, 3]);
    /// ```
    pub fn map_async<F, T, R, I>(&self, f: F, iterable: I) -> Result<AsyncResult<Vec<R>>>
    where
        F: Fn(T) -> R + 'static,
        I: IntoIterator<Item = T>,
        T: TaskData,
        R: TaskData + Send,
    {
        self.map_async_with(f, iterable, None, Callbacks::new())
    }

    /// [`map_async`](Self::map_async) with an optional chunksize and callbacks (the success callback
    /// gets the whole list once).
    ///
    /// ```
    /// use multiprocessing::{Callbacks, Pool};
    /// fn inc(x: u8) -> u8 { x + 1 }
    /// let pool = Pool::new(2).unwrap();
    /// let r = pool.map_async_with(inc, vec![1, 2], Some(1), Callbacks::new()).unwrap();
    /// assert_eq!(r.get().unwrap(), vec![2, 3]);
    /// ```
    pub fn map_async_with<F, T, R, I>(
        &self,
        f: F,
        iterable: I,
        chunksize: Option<usize>,
        callbacks: Callbacks<Vec<R>>,
    ) -> Result<AsyncResult<Vec<R>>>
    where
        F: Fn(T) -> R + 'static,
        I: IntoIterator<Item = T>,
        T: TaskData,
        R: TaskData + Send,
    {
        task::hand_over(f);
        let chunks = self.chunk(iterable.into_iter().collect(), chunksize)?;
        self.submit_slot::<One<F>, T, R, Vec<R>>(chunks, identity, callbacks)
    }

    /// Like [`map`](Self::map), but yields results lazily in input order (Python's `imap`,
    /// chunksize 1).
    ///
    /// ```
    /// fn sq(x: i32) -> i32 { x * x }
    /// let pool = multiprocessing::Pool::new(2).unwrap();
    /// let v: Vec<i32> = pool.imap(sq, 1..4).unwrap().collect::<Result<_, _>>().unwrap();
    /// assert_eq!(v, vec![1, 4, 9]);
    /// ```
    pub fn imap<'a, F, T, R, I>(&self, f: F, iterable: I) -> Result<IMapIterator<'a, R>>
    where
        F: Fn(T) -> R + 'static,
        I: IntoIterator<Item = T>,
        I::IntoIter: 'a,
        T: TaskData,
        R: TaskData + Send,
    {
        self.imap_chunked(f, iterable, 1)
    }

    /// [`imap`](Self::imap) with an explicit chunksize (0 is an error).
    ///
    /// ```
    /// fn sq(x: i32) -> i32 { x * x }
    /// let pool = multiprocessing::Pool::new(2).unwrap();
    /// assert!(pool.imap_chunked(sq, 1..4, 0).is_err());
    /// let v: Vec<i32> = pool.imap_chunked(sq, 1..4, 2).unwrap().map(Result::unwrap).collect();
    /// assert_eq!(v, vec![1, 4, 9]);
    /// ```
    pub fn imap_chunked<'a, F, T, R, I>(
        &self,
        f: F,
        iterable: I,
        chunksize: usize,
    ) -> Result<IMapIterator<'a, R>>
    where
        F: Fn(T) -> R + 'static,
        I: IntoIterator<Item = T>,
        I::IntoIter: 'a,
        T: TaskData,
        R: TaskData + Send,
    {
        task::hand_over(f);
        self.submit_imap::<One<F>, T, R>(iterable.into_iter(), chunksize, true)
    }

    /// Like [`imap`](Self::imap), but yields results in the order they complete (Python's `imap_unordered`).
    ///
    /// ```
    /// fn sq(x: i32) -> i32 { x * x }
    /// let pool = multiprocessing::Pool::new(2).unwrap();
    /// let mut v: Vec<i32> = pool.imap_unordered(sq, 1..4).unwrap().map(Result::unwrap).collect();
    /// v.sort();
    /// assert_eq!(v, vec![1, 4, 9]);
    /// ```
    pub fn imap_unordered<'a, F, T, R, I>(&self, f: F, iterable: I) -> Result<IMapIterator<'a, R>>
    where
        F: Fn(T) -> R + 'static,
        I: IntoIterator<Item = T>,
        I::IntoIter: 'a,
        T: TaskData,
        R: TaskData + Send,
    {
        self.imap_unordered_chunked(f, iterable, 1)
    }

    /// [`imap_unordered`](Self::imap_unordered) with an explicit chunksize.
    ///
    /// ```
    /// fn sq(x: i32) -> i32 { x * x }
    /// let pool = multiprocessing::Pool::new(2).unwrap();
    /// assert_eq!(pool.imap_unordered_chunked(sq, 0..10, 3).unwrap().count(), 10);
    /// ```
    pub fn imap_unordered_chunked<'a, F, T, R, I>(
        &self,
        f: F,
        iterable: I,
        chunksize: usize,
    ) -> Result<IMapIterator<'a, R>>
    where
        F: Fn(T) -> R + 'static,
        I: IntoIterator<Item = T>,
        I::IntoIter: 'a,
        T: TaskData,
        R: TaskData + Send,
    {
        task::hand_over(f);
        self.submit_imap::<One<F>, T, R>(iterable.into_iter(), chunksize, false)
    }

    /// Like [`map`](Self::map), but each item is a tuple of arguments (Python's `starmap`).
    ///
    /// ```
    /// fn pow(b: u64, e: u32) -> u64 { b.pow(e) }
    /// let pool = multiprocessing::Pool::new(2).unwrap();
    /// assert_eq!(pool.starmap(pow, vec![(2, 3), (3, 2), (10, 0)]).unwrap(), vec![8, 9, 1]);
    /// ```
    pub fn starmap<F, A, R, I>(&self, f: F, iterable: I) -> Result<Vec<R>>
    where
        F: StarFn<A, R> + 'static,
        I: IntoIterator<Item = A>,
        A: TaskData,
        R: TaskData + Send,
    {
        self.starmap_async_with(f, iterable, None, Callbacks::new())?
            .get_owned()
    }

    /// Starts a [`starmap`](Self::starmap) and returns at once (Python's `starmap_async`).
    ///
    /// ```
    /// fn add(a: i32, b: i32) -> i32 { a + b }
    /// let pool = multiprocessing::Pool::new(2).unwrap();
    /// assert_eq!(pool.starmap_async(add, vec![(1, 2)]).unwrap().get().unwrap(), vec![3]);
    /// ```
    pub fn starmap_async<F, A, R, I>(&self, f: F, iterable: I) -> Result<AsyncResult<Vec<R>>>
    where
        F: StarFn<A, R> + 'static,
        I: IntoIterator<Item = A>,
        A: TaskData,
        R: TaskData + Send,
    {
        self.starmap_async_with(f, iterable, None, Callbacks::new())
    }

    /// [`starmap_async`](Self::starmap_async) with an optional chunksize and callbacks.
    ///
    /// ```
    /// use multiprocessing::Callbacks;
    /// fn add(a: i32, b: i32) -> i32 { a + b }
    /// let pool = multiprocessing::Pool::new(2).unwrap();
    /// let r = pool.starmap_async_with(add, vec![(1, 2), (3, 4)], Some(1), Callbacks::new()).unwrap();
    /// assert_eq!(r.get().unwrap(), vec![3, 7]);
    /// ```
    pub fn starmap_async_with<F, A, R, I>(
        &self,
        f: F,
        iterable: I,
        chunksize: Option<usize>,
        callbacks: Callbacks<Vec<R>>,
    ) -> Result<AsyncResult<Vec<R>>>
    where
        F: StarFn<A, R> + 'static,
        I: IntoIterator<Item = A>,
        A: TaskData,
        R: TaskData + Send,
    {
        task::hand_over(f);
        let chunks = self.chunk(iterable.into_iter().collect(), chunksize)?;
        self.submit_slot::<Star<F>, A, R, Vec<R>>(chunks, identity, callbacks)
    }
}
