// Package rawsock takes UDP sockets out of Go's network poller, for the
// UDP input and the load generator's UDP senders, which call recvmmsg and
// sendmmsg on them directly. It is Linux only.
//
// A socket in the poller stays registered with epoll for its whole life,
// and the kernel then runs epoll's wake-up callback on every change of its
// state: for a receiver, each datagram queued while its receive queue was
// empty; for a sender, each sent datagram freed. On loopback both run in
// the sender's system call. A blocking socket with no epoll registration
// has a waiter only while a thread sleeps in a read or write on it, and the
// kernel wakes that thread itself.
package rawsock
