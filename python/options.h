// Python keyword arguments to option fields, through the library's option tables
// (for_each_layer_option, for_each_driver_option): a keyword names a field, its value must have the
// field's type. Unknown names and wrong types raise TypeError naming the option.
#pragma once

#include <pybind11/pybind11.h>

#include <limits>
#include <string>
#include <string_view>
#include <type_traits>

namespace pbs2p::python {

namespace py = pybind11;

template <typename T>
inline constexpr bool kUnsupportedOptionType = false;

inline std::string python_type_name(py::handle value) {
    return py::str(py::type::handle_of(value).attr("__name__"));
}

template <typename T>
void assign_option(T& field, const std::string& name, py::handle value) {
    const bool is_bool = py::isinstance<py::bool_>(value);
    const bool is_int = py::isinstance<py::int_>(value) && !is_bool;
    auto wrong_type = [&](const char* expected) {
        return py::type_error("option '" + name + "' expects " + expected + ", got " +
                              python_type_name(value));
    };
    if constexpr (std::is_same_v<T, bool>) {
        if (!is_bool) throw wrong_type("a bool");
        field = value.cast<bool>();
    } else if constexpr (std::is_integral_v<T>) {
        if (!is_int) throw wrong_type("an int");
        const auto v = value.cast<long long>();
        if (v < static_cast<long long>(std::numeric_limits<T>::min()) ||
            v > static_cast<long long>(std::numeric_limits<T>::max()))
            throw py::value_error("option '" + name + "': " + std::to_string(v) + " is out of range");
        field = static_cast<T>(v);
    } else if constexpr (std::is_floating_point_v<T>) {
        if (!is_int && !py::isinstance<py::float_>(value)) throw wrong_type("a float");
        field = value.cast<T>();
    } else if constexpr (std::is_same_v<T, std::string>) {
        if (!py::isinstance<py::str>(value)) throw wrong_type("a str");
        field = value.cast<std::string>();
    } else {
        static_assert(kUnsupportedOptionType<T>, "give this option type a conversion from Python");
    }
}

// Sets the fields of `options` named by `kwargs`. for_each(options, visit) is one of the option tables;
// names in `reserved` are set by a parameter of their own (`hint` says which) and rejected here.
template <typename Options, typename ForEach>
void apply_options(Options& options, const py::kwargs& kwargs, ForEach&& for_each, const char* function,
                   std::initializer_list<std::string_view> reserved, const char* hint) {
    for (const auto& [key, value] : kwargs) {
        const std::string name = py::str(key);
        for (std::string_view r : reserved)
            if (name == r) throw py::type_error(std::string(function) + "(): option '" + name + "': " + hint);
        bool found = false;
        for_each(options, [&](std::string_view option, auto& field) {
            if (option != name) return;
            assign_option(field, name, value);
            found = true;
        });
        if (!found) throw py::type_error(std::string(function) + "(): unknown option '" + name + "'");
    }
}

// The option names of a table, for error messages and docs.
template <typename Options, typename ForEach>
py::list option_names(Options options, ForEach&& for_each) {
    py::list names;
    for_each(options, [&](std::string_view option, auto&) { names.append(py::str(std::string(option))); });
    return names;
}

}  // namespace pbs2p::python
