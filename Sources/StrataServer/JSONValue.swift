import Foundation

/// Any JSON value, for request fields the server only inspects (such as the refused `tools`)
/// and for the robustness test's mutated bodies.
public enum JSONValue: Codable, Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    /// Whether the value asks for nothing: null, false, zero, or an empty string, array or object.
    var isEmpty: Bool {
        switch self {
        case .null: true
        case .bool(let value): !value
        case .number(let value): value == 0
        case .string(let value): value.isEmpty
        case .array(let value): value.isEmpty
        case .object(let value): value.isEmpty
        }
    }
}

/// A request field that is a string or a list of strings (`stop`, `prompt`).
struct StringOrList: Decodable, Sendable {
    var values: [String]

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let value = try? container.decode(String.self) {
            values = [value]
        } else if (try? container.decode([JSONValue].self)) != nil {
            // an array: decoding it again names the element at fault
            values = try container.decode([String].self)
        } else {
            throw DecodingError.typeMismatch(
                StringOrList.self, .init(codingPath: decoder.codingPath, debugDescription: "expected a string or a list of strings"))
        }
    }
}

/// The request decoder, and a readable path (`messages[1].content`) for its errors.
enum RequestDecoding {
    /// Decodes `data`, turning decoding errors into a 400 naming the field.
    static func decode<Value: Decodable>(_ type: Value.Type, from data: Data) throws(APIError) -> Value {
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch let error as APIError {
            throw error
        } catch let error as DecodingError {
            throw apiError(error)
        } catch {
            throw APIError.invalid("The request body is not valid JSON: \(error)", param: nil)
        }
    }

    static func apiError(_ error: DecodingError) -> APIError {
        switch error {
        case .typeMismatch(let expected, let context):
            let path = path(context.codingPath)
            return .invalid("'\(path)' must be \(describe(expected))", param: path, code: "invalid_type")
        case .valueNotFound(let expected, let context):
            let path = path(context.codingPath)
            return .invalid("'\(path)' must be \(describe(expected)), not null", param: path, code: "invalid_type")
        case .keyNotFound(let key, let context):
            let path = path(context.codingPath + [key])
            return .invalid("'\(path)' is required", param: path, code: "missing_required_parameter")
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty {
                return .invalid("The request body is not valid JSON", param: nil, code: "invalid_json")
            }
            let path = path(context.codingPath)
            return .invalid("'\(path)' is invalid: \(context.debugDescription)", param: path, code: "invalid_value")
        @unknown default:
            return .invalid("The request body could not be decoded", param: nil)
        }
    }

    /// `messages[1].content` from a coding path.
    static func path(_ keys: [any CodingKey]) -> String {
        var result = ""
        for key in keys {
            if let index = key.intValue {
                result += "[\(index)]"
            } else {
                result += result.isEmpty ? key.stringValue : "." + key.stringValue
            }
        }
        return result.isEmpty ? "body" : result
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "a boolean"
        case is Int.Type, is Int64.Type: "an integer"
        case is Double.Type, is Float.Type: "a number"
        case is [Any].Type: "an array"
        case is [String: Any].Type: "an object"
        case is StringOrList.Type: "a string or an array of strings"
        default: "of type \(type)"
        }
    }
}
