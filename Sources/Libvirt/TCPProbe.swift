import Glibc

/// Whether a TCP port accepts a connection within a time limit: name resolution, a
/// non-blocking connect and a poll, the socket closed whatever happens. Blocking: call off
/// the cooperative pool. It stands in for what libvirt's iscsi-direct backend lacks (libiscsi
/// inside libvirtd hangs for minutes on a portal that drops packets), and lives here, with
/// the project's other C, because getaddrinfo hands out raw pointers.
public enum TCPProbe {
    /// nil when `host`:`port` accepts a connection within `timeout`, else why not, in words
    /// (`connection refused`, `no answer within 3 seconds`, `its host name does not resolve …`).
    public static func reach(host: String, port: UInt16, timeout: Duration) -> String? {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else {
            return "its host name does not resolve (\(String(cString: gai_strerror(status))))"
        }
        defer { freeaddrinfo(list) }
        var reason = "no address"
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let info = entry {
            let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue),
                            info.pointee.ai_protocol)
            if fd >= 0 {
                defer { close(fd) }
                if connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 { return nil }
                if errno == EINPROGRESS {
                    var poll = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                    let milliseconds = Int32(timeout.components.seconds * 1000)
                    if Glibc.poll(&poll, 1, milliseconds) == 1 {
                        var error: Int32 = 0
                        var length = socklen_t(MemoryLayout<Int32>.size)
                        getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
                        if error == 0 { return nil }
                        reason = String(cString: strerror(error)).lowercased()
                    } else {
                        reason = "no answer within \(timeout.components.seconds) seconds"
                    }
                } else {
                    reason = String(cString: strerror(errno)).lowercased()
                }
            }
            entry = info.pointee.ai_next
        }
        return reason
    }
}
