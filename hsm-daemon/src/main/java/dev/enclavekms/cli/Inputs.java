package dev.enclavekms.cli;

import picocli.CommandLine;
import picocli.CommandLine.ParameterException;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Base64;
import java.util.HexFormat;

/**
 * Reading what the user gives: files ({@code -} is standard input), base64, hex. An
 * unreadable file is a {@link CliFailure} (exit 1); an argument that is not what it must
 * be is a usage error (exit 2). Nothing here throws IOException, so an IOException
 * escaping a command always comes from the daemon connection.
 */
final class Inputs {
    private Inputs() {
    }

    static byte[] read(Environment env, Path file) {
        try {
            if (file.toString().equals("-")) {
                return readAll(env.in());
            }
            return Files.readAllBytes(file);
        } catch (IOException e) {
            throw CliFailure.local("cannot read " + file + ": " + reason(e));
        }
    }

    static byte[] readStdin(Environment env) {
        try {
            return readAll(env.in());
        } catch (IOException e) {
            throw CliFailure.local("cannot read standard input: " + reason(e));
        }
    }

    private static byte[] readAll(InputStream in) throws IOException {
        return in.readAllBytes();
    }

    /** A short reason for a file-system failure (the JDK's message is often just the path). */
    static String reason(IOException e) {
        return switch (e) {
            case NoSuchFileException n -> "no such file";
            case AccessDeniedException a -> "permission denied";
            default -> e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        };
    }

    /**
     * Bytes that may be binary or base64 text: when the content, whitespace removed, is
     * non-empty valid standard base64, it is decoded; otherwise it is used as is. (A
     * ciphertext envelope or a signature is practically never all base64 characters.)
     */
    static byte[] binaryOrBase64(byte[] content) {
        String text = stripWhitespace(new String(content, StandardCharsets.ISO_8859_1));
        if (!text.isEmpty() && isBase64Alphabet(text)) {
            try {
                return Base64.getDecoder().decode(text);
            } catch (IllegalArgumentException notBase64) {
                // e.g. wrong length: then it is binary that happens to look like text
            }
        }
        return content;
    }

    /** A base64 argument (standard alphabet, padding optional, whitespace ignored). */
    static byte[] base64(CommandLine cl, String what, String value) {
        try {
            return Base64.getDecoder().decode(stripWhitespace(value));
        } catch (IllegalArgumentException e) {
            throw new ParameterException(cl, what + " is not valid base64");
        }
    }

    /** A hex argument (either case, even length). */
    static byte[] hex(CommandLine cl, String what, String value) {
        try {
            return HexFormat.of().parseHex(value.strip());
        } catch (IllegalArgumentException e) {
            throw new ParameterException(cl, what + " is not valid hex (an even number of 0-9, a-f)");
        }
    }

    /**
     * An argument that names a file (binary or base64 content) or is itself base64. An
     * existing file wins over the same string read as base64.
     */
    static byte[] fileOrBase64(Environment env, CommandLine cl, String what, String value) {
        Path p = Path.of(value);
        if (value.equals("-") || Files.isRegularFile(p)) {
            return binaryOrBase64(read(env, p));
        }
        try {
            return Base64.getDecoder().decode(stripWhitespace(value));
        } catch (IllegalArgumentException e) {
            throw new ParameterException(cl, what + " '" + abbreviate(value) + "' is neither a file nor valid base64");
        }
    }

    static String abbreviate(String s) {
        return s.length() > 40 ? s.substring(0, 40) + "…" : s;
    }

    private static boolean isBase64Alphabet(String s) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            boolean ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
                    || c == '+' || c == '/' || c == '=';
            if (!ok) return false;
        }
        return true;
    }

    private static String stripWhitespace(String s) {
        StringBuilder b = new StringBuilder(s.length());
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c != ' ' && c != '\n' && c != '\r' && c != '\t') b.append(c);
        }
        return b.toString();
    }
}
