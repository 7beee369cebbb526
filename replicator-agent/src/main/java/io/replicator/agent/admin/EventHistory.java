package io.replicator.agent.admin;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Timestamp;
import io.replicator.proto.Event;
import io.replicator.proto.EventKind;
import io.replicator.proto.EventList;
import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What happened to this node, for the console: every role change, failover, swap, resync, verify
 * and refused operation, with its time and reason. The last {@code capacity} events are kept, in
 * memory and in a small file beside the metadata, so the history survives an agent restart.
 *
 * <p>The file is a sequence of length-delimited {@link Event} records, appended and flushed as
 * they happen. A torn last record (a crash mid-append) is dropped when the file is read. Once the
 * file holds twice the capacity, it is rewritten with the last {@code capacity} events (to a
 * temporary file, then moved over it), so it stays bounded.
 */
public final class EventHistory {
  private static final Logger log = LoggerFactory.getLogger(EventHistory.class);
  /** The file's name in the node's metadata directory. */
  public static final String FILE_NAME = "agent-events";
  public static final int DEFAULT_CAPACITY = 500;

  private final Path file;
  private final String node;
  private final int capacity;
  private final Clock clock;
  private final ArrayDeque<Event> events;
  private final List<Consumer<Event>> listeners = new CopyOnWriteArrayList<>();
  private int recordsInFile;
  private long dropped;
  private boolean fileBroken;

  private EventHistory(Path file, String node, int capacity, Clock clock) {
    this.file = file;
    this.node = node;
    this.capacity = capacity;
    this.clock = clock;
    this.events = new ArrayDeque<>(capacity);
  }

  /**
   * Opens the history in {@code file}, reading what an earlier run recorded. A file that cannot
   * be read is logged and the history starts empty; nothing stops the agent for it.
   */
  public static EventHistory open(Path file, String node, int capacity, Clock clock) {
    if (capacity < 1) {
      throw new IllegalArgumentException("capacity " + capacity);
    }
    EventHistory h = new EventHistory(Objects.requireNonNull(file, "file"), Objects.requireNonNull(node, "node"),
        capacity, Objects.requireNonNull(clock, "clock"));
    h.load();
    return h;
  }

  private void load() {
    if (!Files.exists(file)) {
      return;
    }
    boolean damaged = false;
    try (InputStream in = new BufferedInputStream(Files.newInputStream(file))) {
      while (true) {
        Event e;
        try {
          e = Event.parseDelimitedFrom(in);
        } catch (InvalidProtocolBufferException | RuntimeException torn) {
          log.warn("event history {}: a damaged record after {} events; the rest is dropped", file, recordsInFile);
          damaged = true;
          break;
        }
        if (e == null) {
          break;
        }
        if (!e.hasAt() || e.getKind() == EventKind.EVENT_KIND_UNSPECIFIED) {
          log.warn("event history {}: a record that is no event after {} events; the rest is dropped", file,
              recordsInFile);
          damaged = true;
          break;
        }
        recordsInFile++;
        keep(e);
      }
    } catch (IOException e) {
      log.warn("event history {} cannot be read ({}); starting empty", file, e.getMessage());
    }
    // new records must not land behind a damaged one, where a reader would never find them
    if (damaged || recordsInFile > capacity) {
      compact();
    }
  }

  /** Tells {@code listener} of every event recorded from now on (the failover counter, say). */
  public void onRecord(Consumer<Event> listener) {
    listeners.add(Objects.requireNonNull(listener, "listener"));
  }

  /**
   * Records one event now.
   *
   * @param kind what kind of event
   * @param role the node's role after it (a NodeState name)
   * @param reason what happened and why, in words
   */
  public void record(EventKind kind, String role, String reason) {
    Instant now = clock.instant();
    Event e = Event.newBuilder()
        .setAt(Timestamp.newBuilder().setSeconds(now.getEpochSecond()).setNanos(now.getNano()))
        .setKind(kind).setNode(node).setRole(role == null ? "" : role).setReason(reason == null ? "" : reason)
        .build();
    synchronized (this) {
      keep(e);
      append(e);
    }
    for (Consumer<Event> l : listeners) {
      try {
        l.accept(e);
      } catch (RuntimeException ex) {
        log.warn("event listener failed", ex);
      }
    }
  }

  /** The events kept, oldest first. */
  public synchronized EventList list() {
    return EventList.newBuilder().addAllEvents(events).setDropped(dropped).build();
  }

  /** The history as {@code GET /events} serves it. */
  public String toJson() {
    return AdminJson.print(list());
  }

  private void keep(Event e) {
    if (events.size() == capacity) {
      events.removeFirst();
      dropped++;
    }
    events.addLast(e);
  }

  private void append(Event e) {
    if (fileBroken) {
      return;
    }
    try {
      Files.createDirectories(file.getParent());
      try (OutputStream out = Files.newOutputStream(file, StandardOpenOption.CREATE, StandardOpenOption.APPEND)) {
        e.writeDelimitedTo(out);
      }
      recordsInFile++;
      if (recordsInFile >= 2 * capacity) {
        compact();
      }
    } catch (IOException ex) {
      // the history is for people; a full disk must not stop a failover
      fileBroken = true;
      log.warn("event history {} cannot be written ({}); events are kept in memory only", file, ex.getMessage());
    }
  }

  private void compact() {
    Path temporary = file.resolveSibling(file.getFileName() + ".tmp");
    try {
      try (OutputStream out = Files.newOutputStream(temporary)) {
        for (Event e : events) {
          e.writeDelimitedTo(out);
        }
      }
      try {
        Files.move(temporary, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
      } catch (AtomicMoveNotSupportedException e) {
        Files.move(temporary, file, StandardCopyOption.REPLACE_EXISTING);
      }
      recordsInFile = events.size();
    } catch (IOException e) {
      log.warn("event history {} cannot be rewritten: {}", file, e.getMessage());
    }
  }
}
