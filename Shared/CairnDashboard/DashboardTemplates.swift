import CairnCore
import Foundation
import Hummingbird
import HTTPTypes
import Mustache
import NIOCore

/// The Mustache templates and the static files, read from the package's resources once, at
/// start: a missing or broken template stops the process there rather than on a page.
struct DashboardTemplates: Sendable {
    let library: MustacheLibrary
    /// `file name → (content type, bytes)`.
    let assets: [String: (type: String, body: ByteBuffer)]

    struct MissingResources: Error, CustomStringConvertible {
        var description: String { "the dashboard's templates are missing from the CairnDashboard resource bundle" }
    }

    static func load() throws -> DashboardTemplates {
        guard let root = Bundle.module.url(forResource: "Resources", withExtension: nil) else { throw MissingResources() }
        let library = try MustacheLibrary(templates: Self.templates(in: root.appendingPathComponent("templates")))
        var assets: [String: (type: String, body: ByteBuffer)] = [:]
        let folder = root.appendingPathComponent("static")
        for name in try FileManager.default.contentsOfDirectory(atPath: folder.path) {
            let data = try Data(contentsOf: folder.appendingPathComponent(name))
            let type =
                switch (name as NSString).pathExtension {
                case "css": "text/css; charset=utf-8"
                case "js": "text/javascript; charset=utf-8"
                case "svg": "image/svg+xml"
                default: "application/octet-stream"
                }
            assets[name] = (type, ByteBuffer(bytes: data))
        }
        return DashboardTemplates(library: library, assets: assets)
    }

    static func templates(in folder: URL) throws -> [String: MustacheTemplate] {
        var templates: [String: MustacheTemplate] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: folder.path) where name.hasSuffix(".mustache") {
            let text = try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)
            templates[String(name.dropLast(".mustache".count))] = try MustacheTemplate(string: text)
        }
        guard templates["layout"] != nil else { throw MissingResources() }
        return templates
    }

    /// Every page's headers: HTML that is never cached, framed or run with any script or style
    /// but Cairn's own.
    static let pageHeaders: HTTPFields = [
        .contentType: "text/html; charset=utf-8",
        .cacheControl: "no-store",
        HTTPField.Name("Content-Security-Policy")!:
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        HTTPField.Name("X-Content-Type-Options")!: "nosniff",
        HTTPField.Name("Referrer-Policy")!: "same-origin",
    ]

    /// The sidebar's entries.
    static let navigation: [(path: String, label: String)] = [
        ("/", "Overview"), ("/apps", "Apps"), ("/functions", "Functions"), ("/runs", "Runs"), ("/events", "Events"), ("/queues", "Queues"), ("/schedules", "Schedules"),
        ("/workers", "Workers"), ("/settings", "Settings"),
    ]

    /// Renders `name` inside the layout. `values` are the page's own; the layout's (title, the
    /// viewer, navigation, the CSRF token) are added here.
    func page(
        _ name: String, title: String, request: DashboardRequest?, nav current: String?, _ values: [String: Any], status: HTTPResponse.Status = .ok
    ) -> Response {
        page(name, title: title, viewer: request?.viewer, notice: request?["notice"], nav: current, values, status: status)
    }

    func page(
        _ name: String, title: String, viewer: DashboardViewer?, notice: String? = nil, nav current: String?, _ values: [String: Any],
        status: HTTPResponse.Status = .ok
    ) -> Response {
        let body = render(name, title: title, viewer: viewer, notice: notice, nav: current, values)
        return Response(status: status, headers: Self.pageHeaders, body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }

    /// The HTML of `name` inside the layout, with the layout's values added to the page's.
    func render(_ name: String, title: String, viewer: DashboardViewer?, notice: String?, nav current: String?, _ values: [String: Any]) -> String {
        var context = values
        context["title"] = title
        context["page"] = name
        context["notice"] = notice as Any
        if let viewer {
            context["viewer"] = ["actor": viewer.actor, "role": viewer.role.rawValue, "local": viewer.principal.accountID == nil]
            context["csrf"] = viewer.csrf
            context["canOperate"] = viewer.role.allows(.operator)
            context["nav"] = Self.navigation.map { ["path": $0.path, "label": $0.label, "current": $0.path == current] }
        }
        return library.render(Self.withoutNils(context) ?? [:], withTemplate: name) ?? "template \(name) is missing"
    }

    /// Stands in a page's values for what `streamedPage` sends later.
    static let later = "@@cairn-later@@"

    /// Renders `name` like `page`, where one value is `DashboardTemplates.later`, and sends the
    /// page in parts: up to that placeholder at once, then the text `later` computes (escaped),
    /// then the rest. For a figure that is slow to compute, such as an exact count over a
    /// million runs, placed after what must not wait for it: the browser paints the rows before
    /// the count arrives. A failure to compute it is shown in its place; the page has already
    /// been answered 200.
    func streamedPage(
        _ name: String, title: String, request: DashboardRequest, nav current: String, _ values: [String: Any],
        later: @escaping @Sendable () async throws -> String
    ) -> Response {
        let whole = render(name, title: title, viewer: request.viewer, notice: request["notice"], nav: current, values)
        guard let marker = whole.range(of: Self.later) else {
            return Response(status: .ok, headers: Self.pageHeaders, body: ResponseBody(byteBuffer: ByteBuffer(string: whole)))
        }
        let head = ByteBuffer(string: String(whole[..<marker.lowerBound])), tail = ByteBuffer(string: String(whole[marker.upperBound...]))
        return Response(status: .ok, headers: Self.pageHeaders, body: ResponseBody { writer in
            try await writer.write(head)
            let text: String
            do { text = try await later() } catch { text = "not known: \(error)" }
            try await writer.write(ByteBuffer(string: Self.escaped(text)))
            try await writer.write(tail)
            try await writer.finish(nil)
        })
    }

    /// `text` safe inside an HTML element or a quoted attribute.
    static func escaped(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(character)
            }
        }
        return out
    }

    /// `value` with every nil optional removed, from dictionaries and arrays at any depth:
    /// Mustache would print a nil as "nil" and take it as true. A key left out instead is
    /// absent and false.
    static func withoutNils(_ value: Any) -> Any? {
        if let dictionary = value as? [String: Any] { return dictionary.compactMapValues(withoutNils) }
        if let array = value as? [Any] { return array.compactMap(withoutNils) }
        if let optional = value as? any OptionalValue { return optional.wrapped.flatMap(withoutNils) }
        return value
    }

    func errorPage(status: HTTPResponse.Status, message: String, viewer: DashboardViewer?) -> Response {
        page("error", title: "\(status.code) \(status.reasonPhrase)", viewer: viewer, nav: nil, ["status": status.code, "reason": status.reasonPhrase, "message": message], status: status)
    }

    func asset(_ name: String) -> Response {
        guard let asset = assets[name] else {
            return Response(status: .notFound, headers: [.contentType: "text/plain; charset=utf-8"], body: ResponseBody(byteBuffer: ByteBuffer(string: "no such file: \(name)\n")))
        }
        return Response(
            status: .ok, headers: [.contentType: asset.type, .cacheControl: "public, max-age=300", HTTPField.Name("X-Content-Type-Options")!: "nosniff"],
            body: ResponseBody(byteBuffer: asset.body))
    }
}

/// An optional seen through `Any`, so `withoutNils` can unwrap it without reflection.
protocol OptionalValue {
    var wrapped: Any? { get }
}

extension Optional: OptionalValue {
    var wrapped: Any? { self.map { $0 as Any } }
}

/// An `application/x-www-form-urlencoded` body: each name with its values in order.
enum FormBody {
    static func parse(_ body: ByteBuffer) -> [String: [String]] {
        var fields: [String: [String]] = [:]
        let text = String(buffer: body)
        for pair in text.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = decode(parts[0]), value = parts.count > 1 ? decode(parts[1]) : ""
            fields[name, default: []].append(value)
        }
        return fields
    }

    static func decode(_ text: Substring) -> String {
        String(text).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(text)
    }
}
