package io.replicator.agent.cluster;

import io.replicator.LocalData;
import io.replicator.proto.AgentMessage;
import io.replicator.proto.AgentRecord;
import io.replicator.proto.EventKind;
import java.util.Optional;
import java.util.function.Consumer;

/**
 * Everything a {@link NodeController} does to the world, and the little it reads of it. The agent
 * implements it with links, scripts, a replica server and a worker thread; the simulation with
 * virtual time. Every callback ({@code then}) runs on the controller's own thread, later.
 *
 * <p>The slow operations run one at a time, in the order asked: the controller never asks for
 * another before the previous one called back.
 */
interface NodeIo {

  /** Sends {@code message} on every live link to the peer's agent; false when there is none. */
  boolean sendToPeer(AgentMessage message);

  /** Sends {@code message} to the witness, when the pair has one. */
  void sendToWitness(AgentMessage message);

  /** Writes the agent's record durably before it returns. */
  void persist(AgentRecord record);

  /** Closes the replica server, if one runs, then reads what the disk says. */
  void closeReplica(Consumer<LocalData> then);

  /** Starts the application as primary; {@code then} gets whether its start script succeeded. */
  void startApplication(Consumer<Boolean> then);

  /**
   * Stops the application and waits for it to release the file system; {@code then} gets whether
   * it released with the peer holding everything (false also when it did not release in time,
   * or there was no application), and what the disk says afterwards.
   */
  void stopApplication(Consumer<Stopped> then);

  /** Starts the replica server; {@code then} gets the error that prevented it, if any. */
  void startReplica(boolean discardLocalChanges, Consumer<Optional<String>> then);

  /** Runs the application's checkers; {@code then} gets the first failure, if any. */
  void checkApplication(Consumer<Optional<String>> then);

  /** Records an event for the operator's history: a role change, a failover, a swap, a command. */
  void event(EventKind kind, String reason);

  /** The replica server as it is now, or null when none runs. Must not block. */
  ReplicaView replica();

  /**
   * What stopping the application found.
   *
   * @param releasedInSync the application released its file system with the peer holding everything
   * @param local what the disk says once it let go
   */
  record Stopped(boolean releasedInSync, LocalData local) {}

  /**
   * The replica server, as seen now.
   *
   * @param primaryConnected a primary's replication link is up
   * @param consistent no resync into this node is running or unfinished
   * @param peerOutdated this node still holds changes the primary lacks (until a resync replaces them)
   * @param generation the replica's current generation
   */
  record ReplicaView(boolean primaryConnected, boolean consistent, boolean peerOutdated, long generation) {}
}
