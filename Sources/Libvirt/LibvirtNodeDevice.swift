internal import CLibvirt
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Filters for `LibvirtConnection.allNodeDevices(flags:)`, mapping
/// `virConnectListAllNodeDeviceFlags`; capability bits combine as "any of these". The empty set
/// lists every device.
public struct ListNodeDevicesFlags: OptionSet, Sendable {
    /// The raw bits.
    public let rawValue: UInt32
    /// Creates flags from raw bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// The host itself (`VIR_CONNECT_LIST_NODE_DEVICES_CAP_SYSTEM`).
    public static let system = ListNodeDevicesFlags(rawValue: VIR_CONNECT_LIST_NODE_DEVICES_CAP_SYSTEM.rawValue)
    /// PCI devices (`VIR_CONNECT_LIST_NODE_DEVICES_CAP_PCI_DEV`).
    public static let pciDevice = ListNodeDevicesFlags(rawValue: VIR_CONNECT_LIST_NODE_DEVICES_CAP_PCI_DEV.rawValue)
    /// USB devices (`VIR_CONNECT_LIST_NODE_DEVICES_CAP_USB_DEV`).
    public static let usbDevice = ListNodeDevicesFlags(rawValue: VIR_CONNECT_LIST_NODE_DEVICES_CAP_USB_DEV.rawValue)
    /// Network interfaces (`VIR_CONNECT_LIST_NODE_DEVICES_CAP_NET`).
    public static let net = ListNodeDevicesFlags(rawValue: VIR_CONNECT_LIST_NODE_DEVICES_CAP_NET.rawValue)
    /// SCSI host adapters (`VIR_CONNECT_LIST_NODE_DEVICES_CAP_SCSI_HOST`).
    public static let scsiHost = ListNodeDevicesFlags(rawValue: VIR_CONNECT_LIST_NODE_DEVICES_CAP_SCSI_HOST.rawValue)
    /// SCSI targets (`VIR_CONNECT_LIST_NODE_DEVICES_CAP_SCSI_TARGET`).
    public static let scsiTarget = ListNodeDevicesFlags(rawValue: VIR_CONNECT_LIST_NODE_DEVICES_CAP_SCSI_TARGET.rawValue)
    /// SCSI devices (`VIR_CONNECT_LIST_NODE_DEVICES_CAP_SCSI`).
    public static let scsi = ListNodeDevicesFlags(rawValue: VIR_CONNECT_LIST_NODE_DEVICES_CAP_SCSI.rawValue)
    /// Storage devices (`VIR_CONNECT_LIST_NODE_DEVICES_CAP_STORAGE`).
    public static let storage = ListNodeDevicesFlags(rawValue: VIR_CONNECT_LIST_NODE_DEVICES_CAP_STORAGE.rawValue)
    /// Fibre Channel host bus adapters (`VIR_CONNECT_LIST_NODE_DEVICES_CAP_FC_HOST`).
    public static let fcHost = ListNodeDevicesFlags(rawValue: VIR_CONNECT_LIST_NODE_DEVICES_CAP_FC_HOST.rawValue)
    /// HBAs that can create NPIV virtual ports (`VIR_CONNECT_LIST_NODE_DEVICES_CAP_VPORTS`).
    public static let vports = ListNodeDevicesFlags(rawValue: VIR_CONNECT_LIST_NODE_DEVICES_CAP_VPORTS.rawValue)
    /// Mediated devices (`VIR_CONNECT_LIST_NODE_DEVICES_CAP_MDEV`).
    public static let mdev = ListNodeDevicesFlags(rawValue: VIR_CONNECT_LIST_NODE_DEVICES_CAP_MDEV.rawValue)
    /// Inactive (defined, not started) devices (`VIR_CONNECT_LIST_NODE_DEVICES_INACTIVE`).
    public static let inactive = ListNodeDevicesFlags(rawValue: VIR_CONNECT_LIST_NODE_DEVICES_INACTIVE.rawValue)
    /// Active devices (`VIR_CONNECT_LIST_NODE_DEVICES_ACTIVE`).
    public static let active = ListNodeDevicesFlags(rawValue: VIR_CONNECT_LIST_NODE_DEVICES_ACTIVE.rawValue)
}

/// A host device as libvirt's node-device driver sees it (PCI device, NIC, SCSI or Fibre
/// Channel host adapter, NPIV vHBA…). Owns one `virNodeDevicePtr` and frees it when released.
/// Wraps `virNodeDeviceFree`.
public final class LibvirtNodeDevice: @unchecked Sendable {
    /// The `virNodeDevicePtr`, owned by this object.
    let handle: OpaquePointer

    /// Takes ownership of a `virNodeDevicePtr`.
    init(owning handle: OpaquePointer) {
        self.handle = handle
    }

    deinit {
        if virNodeDeviceFree(handle) < 0 { virResetLastError() }
    }

    /// The device's name, e.g. "scsi_host5" or "net_eth0_52_54_00_12_34_56".
    /// Wraps `virNodeDeviceGetName`.
    public var name: String {
        get throws { try borrowString("virNodeDeviceGetName") { virNodeDeviceGetName(handle) } }
    }

    /// The parent device's name; nil for the root ("computer"). Wraps `virNodeDeviceGetParent`.
    public var parent: String? {
        // NULL means "no parent", not an error.
        let parent = virNodeDeviceGetParent(handle)
        if parent == nil { virResetLastError() }
        return parent.map { String(cString: $0) }
    }

    /// The device's capability names, e.g. ["scsi_host", "fc_host", "vports"].
    /// Wraps `virNodeDeviceNumOfCaps` and `virNodeDeviceListCaps`.
    public func capabilities() throws -> [String] {
        let count = try check("virNodeDeviceNumOfCaps") { virNodeDeviceNumOfCaps(handle) }
        guard count > 0 else { return [] }
        var names = [UnsafeMutablePointer<CChar>?](repeating: nil, count: Int(count))
        let filled = try names.withUnsafeMutableBufferPointer { buffer in
            try check("virNodeDeviceListCaps") { virNodeDeviceListCaps(handle, buffer.baseAddress, count) }
        }
        defer { names.forEach { free($0) } }
        return names.prefix(Int(filled)).compactMap { $0.map { String(cString: $0) } }
    }

    /// The device's `<device>` XML. Wraps `virNodeDeviceGetXMLDesc`.
    public func xmlDesc() throws -> String {
        try takeString("virNodeDeviceGetXMLDesc") { virNodeDeviceGetXMLDesc(handle, 0) }
    }

    /// Removes a device created with `createNodeDevice` (an NPIV vHBA, a mediated device).
    /// Wraps `virNodeDeviceDestroy`.
    public func destroy() throws {
        try check("virNodeDeviceDestroy") { virNodeDeviceDestroy(handle) }
    }
}

extension LibvirtConnection {
    /// All host devices matching `flags` (e.g. `[.fcHost, .vports]` for NPIV-capable HBAs).
    /// Wraps `virConnectListAllNodeDevices`.
    public func allNodeDevices(flags: ListNodeDevicesFlags = []) throws -> [LibvirtNodeDevice] {
        try list("virConnectListAllNodeDevices", LibvirtNodeDevice.init(owning:)) {
            virConnectListAllNodeDevices(handle, $0, flags.rawValue)
        }
    }

    /// The device with this name; throws a `.noNodeDevice` error when there is none.
    /// Wraps `virNodeDeviceLookupByName`.
    public func nodeDevice(name: String) throws -> LibvirtNodeDevice {
        LibvirtNodeDevice(owning: try checkNonNull("virNodeDeviceLookupByName") {
            virNodeDeviceLookupByName(handle, name)
        })
    }

    /// The SCSI host (Fibre Channel HBA or vHBA) with these world-wide node and port names;
    /// throws a `.noNodeDevice` error when there is none.
    /// Wraps `virNodeDeviceLookupSCSIHostByWWN`.
    public func nodeDevice(wwnn: String, wwpn: String) throws -> LibvirtNodeDevice {
        LibvirtNodeDevice(owning: try checkNonNull("virNodeDeviceLookupSCSIHostByWWN") {
            virNodeDeviceLookupSCSIHostByWWN(handle, wwnn, wwpn, 0)
        })
    }

    /// Creates a transient device from `<device>` XML, e.g. an NPIV vHBA
    /// (`<capability type='scsi_host'><capability type='fc_host'/></capability>` under a
    /// `vports`-capable parent). Wraps `virNodeDeviceCreateXML`.
    public func createNodeDevice(xml: String) throws -> LibvirtNodeDevice {
        LibvirtNodeDevice(owning: try checkNonNull("virNodeDeviceCreateXML") {
            virNodeDeviceCreateXML(handle, xml, 0)
        })
    }
}
