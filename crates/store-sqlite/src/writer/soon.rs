//! Waiting for the next message without going to sleep at once.

use std::{
    sync::mpsc::{Receiver, RecvError, TryRecvError},
    thread,
    time::{Duration, Instant},
};

/// How long a stage looks for its next message, yielding its core in between, before it
/// blocks.
pub(super) const LOOK: Duration = Duration::from_micros(50);

/// [`Receiver::recv`], but looking for up to [`LOOK`] before blocking. A message sent to a
/// thread blocked on its channel first has to wake the thread, and on a virtual machine whose
/// core has gone idle that wake-up is a large part of a lone write's path: a hybrid call
/// passes the writer and the sync thread twice each, and looking first took its overhead
/// in-process from 0.672 to 0.626 ms (medians of 12 alternating pairs), for some 10% more CPU
/// time while it runs. An idle store blocks after one look, so it costs nothing at rest.
pub(super) fn recv_soon<T>(rx: &Receiver<T>) -> Result<T, RecvError> {
    let until = Instant::now() + LOOK;
    loop {
        match rx.try_recv() {
            Ok(message) => return Ok(message),
            Err(TryRecvError::Disconnected) => return Err(RecvError),
            Err(TryRecvError::Empty) if Instant::now() < until => thread::yield_now(),
            Err(TryRecvError::Empty) => return rx.recv(),
        }
    }
}

/// [`recv_soon`] with a deadline: `None` once it passes or the channel closes.
pub(super) fn recv_soon_until<T>(rx: &Receiver<T>, deadline: Instant) -> Option<T> {
    let look = (Instant::now() + LOOK).min(deadline);
    loop {
        match rx.try_recv() {
            Ok(message) => return Some(message),
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) if Instant::now() < look => thread::yield_now(),
            Err(TryRecvError::Empty) => {
                return rx
                    .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                    .ok();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    #[test]
    fn a_queued_message_comes_at_once() {
        let (tx, rx) = mpsc::channel();
        tx.send(7).unwrap();
        assert_eq!(recv_soon(&rx), Ok(7));
    }

    #[test]
    fn a_message_sent_after_the_look_still_arrives() {
        let (tx, rx) = mpsc::channel();
        let sender = thread::spawn(move || {
            thread::sleep(LOOK * 20);
            tx.send("late").unwrap();
        });
        assert_eq!(recv_soon(&rx), Ok("late"));
        sender.join().unwrap();
    }

    #[test]
    fn a_wait_with_a_deadline_ends_at_it_or_with_the_message() {
        let (tx, rx) = mpsc::channel();
        let start = Instant::now();
        assert_eq!(recv_soon_until(&rx, start + LOOK * 4), None::<u8>);
        assert!(start.elapsed() >= LOOK * 4);

        let sender = thread::spawn(move || {
            thread::sleep(LOOK * 4);
            tx.send(9).unwrap();
        });
        let far = Instant::now() + Duration::from_secs(60);
        assert_eq!(recv_soon_until(&rx, far), Some(9));
        sender.join().unwrap();
        assert_eq!(recv_soon_until(&rx, far), None, "closed");
    }

    #[test]
    fn a_closed_channel_ends_the_wait_whether_looking_or_blocked() {
        let (tx, rx) = mpsc::channel::<()>();
        drop(tx);
        assert_eq!(recv_soon(&rx), Err(RecvError));

        let (tx, rx) = mpsc::channel::<()>();
        let closer = thread::spawn(move || {
            thread::sleep(LOOK * 20);
            drop(tx);
        });
        assert_eq!(recv_soon(&rx), Err(RecvError));
        closer.join().unwrap();
    }
}
