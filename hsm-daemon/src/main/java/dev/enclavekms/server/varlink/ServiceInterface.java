package dev.enclavekms.server.varlink;

import dev.enclavekms.varlink.VarlinkError;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.function.Supplier;

/** {@code org.varlink.service}, which every varlink server implements. */
final class ServiceInterface {
    static final String IDL = """
            # The Varlink Service Interface is provided by every varlink service. It
            # describes the service and the interfaces it implements.
            interface org.varlink.service

            # Get a list of all the interfaces a service provides and information
            # about the implementation.
            method GetInfo() -> (
              vendor: string,
              product: string,
              version: string,
              url: string,
              interfaces: []string
            )

            # Get the description of an interface that is implemented by this service.
            method GetInterfaceDescription(interface: string) -> (description: string)

            # The requested interface was not found.
            error InterfaceNotFound (interface: string)

            # The requested method was not found
            error MethodNotFound (method: string)

            # The interface defines the requested method, but the service does not
            # implement it.
            error MethodNotImplemented (method: string)

            # One of the passed parameters is invalid.
            error InvalidParameter (parameter: string)

            # Client is denied access
            error PermissionDenied ()

            # Method is expected to be called with 'more' set to true, but wasn't
            error ExpectedMore ()
            """;

    private ServiceInterface() {
    }

    static VarlinkInterface create(VarlinkServer.ServiceInfo info, Supplier<List<String>> names,
                                   Function<String, String> descriptions) {
        return VarlinkInterface.builder(VarlinkServer.SERVICE_INTERFACE, IDL)
                .method("GetInfo", call -> {
                    Map<String, Object> r = new LinkedHashMap<>();
                    r.put("vendor", info.vendor());
                    r.put("product", info.product());
                    r.put("version", info.version());
                    r.put("url", info.url());
                    r.put("interfaces", names.get());
                    return r;
                })
                .method("GetInterfaceDescription", call -> {
                    String name = call.parameters().string("interface", 255);
                    String d = descriptions.apply(name);
                    if (d == null) {
                        throw new VarlinkError("org.varlink.service.InterfaceNotFound", Map.of("interface", name,
                                "message", "this service has no interface " + name
                                        + "; org.varlink.service.GetInfo lists its interfaces"));
                    }
                    return Map.of("description", d);
                })
                .build();
    }
}
